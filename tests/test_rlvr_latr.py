"""LATR on a tiny random GPT-2 whose next-token distribution the test controls."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from stepstone.errors import ConfigError
from stepstone.rlvr.latr import edit_distance, latr_rollouts
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
    # Tokens "5" and "6" tied at +10 (p = 0.5 each, the rest ~ 1e-5): every step is a tie, so
    # the first step must branch into the token the root did not sample.
    model = model_with_logits({FIVE: 10.0, SIX: 10.0})
    gen = torch.Generator().manual_seed(0)
    res = latr_rollouts(model, PROMPT, 6, 4, EOS, prune_below=0.0, generator=gen)
    assert res.tokens.shape == (6, 4)
    step, parent, child, token = res.branch_points[0]
    assert step == 0 and parent == 0 and token in (FIVE, SIX)
    assert res.tokens[0, 0].item() != res.tokens[child, 0].item()  # the child took the other one
    assert res.filled == 0
    # every completion is made of the two tied tokens only
    assert set(res.tokens.unique().tolist()) <= {FIVE, SIX}


def test_no_branch_when_the_second_token_is_far_behind():
    # "5" at +10, "6" at +8: p = 0.88 vs 0.12 -> gap 0.76 > tau_rel 0.3 and 0.12 < tau_abs 0.15
    model = model_with_logits({FIVE: 10.0, SIX: 8.0})
    res = latr_rollouts(model, PROMPT, 5, 3, EOS, generator=torch.Generator().manual_seed(0))
    assert res.branch_points == [] and res.filled == 4 and res.tokens.shape == (5, 3)


def test_children_too_similar_to_their_parent_are_pruned():
    # First generated token: "5"/"6" tied; afterwards "7" almost surely. A child differs from
    # its parent in one token out of 1 + lookahead 3 = 4: distance 0.25 < 0.3 -> pruned.
    class Scripted(torch.nn.Module):
        def forward(self, input_ids, **cache):  # the fill-up samples pass a KV cache

            logits = torch.zeros(*input_ids.shape, len(TOK))
            first = input_ids.shape[1] == len(PROMPT)
            logits[..., FIVE if first else SEVEN] = 10.0
            logits[..., SIX if first else SEVEN] = 10.0
            return SimpleNamespace(logits=logits, past_key_values=None)

    gen = torch.Generator().manual_seed(1)
    res = latr_rollouts(Scripted(), PROMPT, 4, 6, EOS, lookahead=3, generator=gen)
    assert len(res.branch_points) >= 1 and res.pruned == len(res.branch_points)
    assert res.tokens.shape == (4, 6) and res.filled == 3
    # With pruning off the branch survives and the group starts with two different tokens.
    res = latr_rollouts(Scripted(), PROMPT, 2, 6, EOS, prune_below=0.0, generator=gen)
    assert res.pruned == 0 and set(res.tokens[:, 0].tolist()) == {FIVE, SIX}


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
