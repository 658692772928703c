"""LATR on a tiny random GPT-2 whose next-token distribution the test controls."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from stepstone.errors import ConfigError
from stepstone.rlvr.latr import STEPSTONE_SETTINGS, edit_distance, latr_rollouts
from stepstone.rlvr.tasks import CharTokenizer, tiny_policy

torch.set_num_threads(1)
TOK = CharTokenizer()
EOS = TOK.eos_id


def model_with_logits(bias: dict[int, float]):
    """The tiny random GPT-2 with its output layer replaced: constant logits from ``bias``."""
    model = tiny_policy(TOK, seed=0).eval()
    head = torch.nn.Linear(model.config.n_embd, len(TOK), bias=True)
    torch.nn.init.zeros_(head.weight)
    torch.nn.init.zeros_(head.bias)
    with torch.no_grad():
        for token, value in bias.items():
            head.bias[token] = value
    model.lm_head = head
    return model


PROMPT = torch.tensor(TOK.encode("12+34="))
FIVE, SIX, SEVEN = TOK.index["5"], TOK.index["6"], TOK.index["7"]


def test_branches_where_top_two_are_close():
    # "5" and "6" tied at +10 (p = .5 each, the rest ~1e-5). starreeze/latr
    # _sample_new_sequence_with_rollout: every branch takes its top-1 token (the first of the
    # tie, "5"); the runner-up opens a child (.5 > tau_abs .25, gap 0 < tau_rel .15).
    model = model_with_logits({FIVE: 10.0, SIX: 10.0})
    gen = torch.Generator().manual_seed(0)
    res = latr_rollouts(model, PROMPT, 6, 4, EOS, prune_below=0.0, generator=gen)
    assert res.tokens.shape == (6, 4) and res.filled == 0
    assert res.branch_points[0] == (0, 0, 1, SIX)
    assert res.tokens[0].tolist() == [FIVE] * 4  # the root never samples while branching
    assert set(res.tokens.unique().tolist()) <= {FIVE, SIX}
    # All six completions differ: each child took the token its parent did not.
    assert len({tuple(r) for r in res.tokens.tolist()}) == 6


def test_no_branch_when_the_second_token_is_far_behind():
    # "5" at +10, "6" at +9: p = .731 vs .269 -> .269 > tau_abs .25 but the gap .462 is not
    # below tau_rel .15: no branch; the tree is one greedy path, the rest plain samples.
    model = model_with_logits({FIVE: 10.0, SIX: 9.0})
    res = latr_rollouts(model, PROMPT, 5, 3, EOS, generator=torch.Generator().manual_seed(0))
    assert res.branch_points == [] and res.filled == 4 and res.tokens[0].tolist() == [FIVE] * 3


class Scripted(torch.nn.Module):
    """First generated token: "5"/"6" tied; afterwards ``then`` almost surely."""

    def __init__(self, then: int):
        super().__init__()
        self.then = then

    def forward(self, input_ids, **cache):  # the finishing samples pass a KV cache
        logits = torch.zeros(*input_ids.shape, len(TOK))
        first = input_ids.shape[1] == len(PROMPT)
        logits[..., FIVE if first else self.then] = 10.0
        logits[..., SIX if first else self.then] = 10.0
        return SimpleNamespace(logits=logits, past_key_values=None)


def test_children_too_similar_to_their_parent_are_pruned_at_20_tokens():
    # The child "6 7 7 ..." and its parent "5 7 7 ..." differ in 1 of the 20 tokens since its
    # birth: 1 / 20 = .05 < .4 (RolloutFilter at rollout_filter_steps 20) -> pruned.
    gen = torch.Generator().manual_seed(1)
    res = latr_rollouts(Scripted(SEVEN), PROMPT, 4, 25, EOS, generator=gen)
    assert res.branch_points == [(0, 0, 1, SIX)] and res.pruned == 1 and res.filled == 3
    assert res.tree_steps == 24  # the group never filled, so the tree ran to the end
    # Before its 20th token nothing is checked: with 19 tokens the child survives.
    res = latr_rollouts(Scripted(SEVEN), PROMPT, 2, 19, EOS, generator=gen)
    assert res.pruned == 0 and set(res.tokens[:, 0].tolist()) == {FIVE, SIX}
    # Our earlier setting checked once after 4 tokens: 1 / 4 = .25 < .3 -> pruned.
    res = latr_rollouts(Scripted(SEVEN), PROMPT, 2, 19, EOS, generator=gen, **STEPSTONE_SETTINGS)
    assert res.pruned == 1


def test_segments_with_the_end_token_are_not_compared():
    # After the first token the end token is sure: both segments hold it, so RolloutFilter
    # skips the pair and the child survives although it differs in one token only.
    res = latr_rollouts(Scripted(EOS), PROMPT, 2, 25, EOS, generator=torch.Generator())
    assert res.pruned == 0 and res.tokens[:, :2].tolist() == [[FIVE, EOS], [SIX, EOS]]


def test_a_full_group_hands_over_to_sampling_after_the_last_check():
    # Two tied tokens at every step: the group of 4 is full after two steps (children born at
    # tokens 0 and 1). With checks at ages 5 and 8 (never pruning: prune_below=0), the last
    # child's last check comes with its 8th token, i.e. 9 tokens in; then sampling finishes
    # the 12-token completions.
    model = model_with_logits({FIVE: 10.0, SIX: 10.0})
    gen = torch.Generator().manual_seed(0)
    res = latr_rollouts(model, PROMPT, 4, 12, EOS, prune_at=(5, 8), prune_below=0.0, generator=gen)
    assert res.tree_steps == 9 and res.tokens.shape == (4, 12) and res.filled == 0
    assert {tuple(r[:2]) for r in res.tokens.tolist()} == {
        (FIVE, FIVE), (FIVE, SIX), (SIX, FIVE), (SIX, SIX)
    }  # fmt: skip


def test_group_size_on_the_random_model_and_bad_input():
    model = tiny_policy(TOK, seed=0).eval()
    gen = torch.Generator().manual_seed(0)
    for g in (1, 3, 8):
        res = latr_rollouts(model, PROMPT, g, 5, EOS, tau_abs=0.0, tau_rel=1.0, generator=gen)
        assert res.tokens.shape == (g, 5)
    with pytest.raises(ConfigError, match="at least one completion"):
        latr_rollouts(model, PROMPT, 0, 5, EOS)


def test_edit_distance_hand_computed():
    assert edit_distance([1, 2, 3], [1, 3]) == 1  # one deletion
    assert edit_distance([1, 2], [3, 4]) == 2  # two substitutions
    assert edit_distance([], [1, 2]) == 2
