"""A verifiable task and a policy small enough to train from scratch on one CPU core.

``AdditionTask``: prompts ``"047+385="``, answer ``"432"`` then end-of-sequence; the reward is
1.0 for the exact answer and 0.0 otherwise (verifiable, binary). ``ChainTask``: a sum of many
digits answered with a trace of running totals (``"3+5+2+7="`` -> ``"8,10,17"``), long enough
for a group to branch and for early slips to compound; only the final total is checked.
``CharTokenizer`` maps one character to one token. ``tiny_policy`` builds a randomly
initialised GPT-2 from a config (about 0.1M parameters, nothing downloaded) and ``pretrain``
teaches it the task by supervised learning for a fixed number of steps, stopping at a middling
success rate so that RL has room to improve and per-prompt success rates differ.
Used by the tests, the benchmark and the TRL example; not a general-purpose task library.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

PAD, BOS, EOS = "_", "^", "$"


class CharTokenizer:
    """One token per character of ``alphabet`` (default ``0-9 + =``) and ``_ ^ $`` (pad, begin,
    end); ``ChainTask`` needs ``alphabet="0123456789+=,"``."""

    def __init__(self, alphabet: str = "0123456789+="):
        self.chars = PAD + BOS + EOS + alphabet
        self.index = {c: i for i, c in enumerate(self.chars)}
        self.pad_id, self.bos_id, self.eos_id = 0, 1, 2

    def __len__(self) -> int:
        return len(self.chars)

    def encode(self, text: str, bos: bool = True) -> list[int]:
        ids = [self.index[c] for c in text]
        return [self.bos_id, *ids] if bos else ids

    def decode(self, ids) -> str:
        """Characters up to the first end-of-sequence, without special tokens."""
        out = []
        for i in ids:
            i = int(i)
            if i == self.eos_id:
                break
            if i > self.eos_id:
                out.append(self.chars[i])
        return "".join(out)


@dataclass(frozen=True)
class AdditionTask:
    """``digits``-digit addition with zero-padded operands (so all prompts have one length)."""

    digits: int = 3

    @property
    def max_new_tokens(self) -> int:
        return self.digits + 2  # answer digits (one more for a carry) and end-of-sequence

    def prompts(self, n: int, seed: int) -> list[str]:
        rng = np.random.default_rng(seed)
        top = 10**self.digits
        a, b = rng.integers(0, top, n), rng.integers(0, top, n)
        return [f"{x:0{self.digits}d}+{y:0{self.digits}d}=" for x, y in zip(a, b, strict=True)]

    @staticmethod
    def answer(prompt: str) -> str:
        a, b = prompt.rstrip("=").split("+")
        return str(int(a) + int(b))

    def reward(self, prompt: str, completion: str) -> float:
        return 1.0 if completion == self.answer(prompt) else 0.0


@dataclass(frozen=True)
class ChainTask:
    """Sum of ``terms`` digits; the answer lists the running total after each addition.

    ``"3+5+2+7="`` -> ``"8,10,17"``. The reward is 1.0 when the last number of the completion is
    the sum, whatever the trace before it (a verifiable final answer after free reasoning).
    """

    terms: int = 10

    @property
    def max_new_tokens(self) -> int:
        return 3 * (self.terms - 1) + 1  # up to two digits and a comma per total, then the end

    def prompts(self, n: int, seed: int) -> list[str]:
        rng = np.random.default_rng(seed)
        return ["+".join(map(str, row)) + "=" for row in rng.integers(0, 10, (n, self.terms))]

    @staticmethod
    def answer(prompt: str) -> str:
        digits = [int(d) for d in prompt.rstrip("=").split("+")]
        return ",".join(str(t) for t in np.cumsum(digits)[1:])

    def reward(self, prompt: str, completion: str) -> float:
        total = sum(int(d) for d in prompt.rstrip("=").split("+"))
        return 1.0 if completion.rsplit(",", 1)[-1] == str(total) else 0.0


def tiny_policy(
    tokenizer: CharTokenizer, seed: int = 0, n_layer: int = 2, n_embd: int = 64, n_positions=32
):
    """A GPT-2 causal LM built from a config with random weights (no download)."""
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(seed)
    config = GPT2Config(
        vocab_size=len(tokenizer),
        n_positions=n_positions,
        n_embd=n_embd,
        n_layer=n_layer,
        n_head=4,
        bos_token_id=tokenizer.bos_id,
        eos_token_id=tokenizer.eos_id,
        pad_token_id=tokenizer.pad_id,
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
    )
    return GPT2LMHeadModel(config)


def pretrain(
    model,
    tokenizer: CharTokenizer,
    task,
    steps: int,
    batch: int = 64,
    lr: float = 3e-3,
    seed: int = 0,
    until=None,
    target: float = 1.0,
    check_every: int = 50,
) -> list[float]:
    """Supervised learning on fresh random sums (loss on the answer tokens); returns losses.

    With ``until`` (a function of the model), stops once it returns at least ``target``.
    """
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    model.train()
    losses = []
    for step in range(steps):
        prompts = task.prompts(batch, seed=10_000 * (seed + 1) + step)
        seqs, labels = [], []
        width = 1 + len(prompts[0]) + task.max_new_tokens
        for p in prompts:
            ids = tokenizer.encode(p) + tokenizer.encode(task.answer(p) + EOS, bos=False)
            lab = [-100] * (len(p) + 1) + ids[len(p) + 1 :]
            pad = width - len(ids)
            seqs.append(ids + [tokenizer.pad_id] * pad)
            labels.append(lab + [-100] * pad)
        out = model(input_ids=torch.tensor(seqs), labels=torch.tensor(labels))
        opt.zero_grad()
        out.loss.backward()
        opt.step()
        losses.append(float(out.loss.detach()))
        if until is not None and (step + 1) % check_every == 0 and until(model) >= target:
            break
    model.eval()
    return losses


@torch.no_grad()
def success_rate(model, tokenizer: CharTokenizer, task, prompts, seed: int = 0):
    """Share of prompts solved by one sampled completion each (temperature 1)."""
    from .sampling import sample

    model.eval()
    ids = torch.tensor([tokenizer.encode(p) for p in prompts])
    gen = torch.Generator().manual_seed(seed)
    tokens, _, _ = sample(model, ids, task.max_new_tokens, tokenizer.eos_id, generator=gen)
    rewards = [task.reward(p, tokenizer.decode(t)) for p, t in zip(prompts, tokens, strict=True)]
    return float(np.mean(rewards))


def pretrain_to(
    model,
    tokenizer: CharTokenizer,
    task,
    target: float,
    max_steps: int = 4000,
    seed: int = 0,
    eval_prompts: int = 256,
) -> tuple[int, float]:
    """Pretrain until one-sample success on held-out sums reaches ``target`` (checked every
    50 steps); returns (steps taken, success reached)."""
    held_out = task.prompts(eval_prompts, seed=7_777 + seed)

    def check(m):
        m.eval()
        rate = success_rate(m, tokenizer, task, held_out, seed=seed)
        m.train()
        return rate

    losses = pretrain(model, tokenizer, task, max_steps, seed=seed, until=check, target=target)
    return len(losses), success_rate(model, tokenizer, task, held_out, seed=seed)


def hf_tokenizer(tokenizer: CharTokenizer):
    """The same character tokenizer as a ``transformers`` fast tokenizer (what TRL needs):
    one token per character, the begin token prepended, ``$`` as end and ``_`` as padding."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {c: i for i, c in enumerate(tokenizer.chars)}
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token=PAD))
    core.pre_tokenizer = pre_tokenizers.Split(Regex("."), behavior="isolated")
    core.decoder = decoders.Fuse()
    core.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A", special_tokens=[(BOS, tokenizer.bos_id)]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=core, bos_token=BOS, eos_token=EOS, pad_token=PAD, unk_token=PAD
    )
