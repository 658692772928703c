"""Plain ancestral sampling from a ``transformers`` causal LM, and the log-probabilities GRPO
needs: the reference rollout strategy that LATR (latr.py) is compared with.

Prompts in a batch must have the same length (no left padding). Completions stop at the
tokenizer's end-of-sequence; ``mask`` marks the tokens up to and including it.
"""

from __future__ import annotations

import torch


def completion_mask(tokens: torch.Tensor, eos_id: int) -> torch.Tensor:
    """1 for tokens up to and including the first end-of-sequence, 0 after it."""
    is_eos = (tokens == eos_id).int()
    after = torch.cumsum(is_eos, dim=-1) - is_eos  # eos seen strictly before this position
    return (after == 0).to(torch.float32)


@torch.no_grad()
def sample(
    model,
    prompt_ids: torch.Tensor,
    max_new_tokens: int,
    eos_id: int,
    temperature: float = 1.0,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Sample completions for a batch of equal-length prompts.

    Returns (tokens [B, T], their log-probabilities under the sampling distribution [B, T],
    mask [B, T]).
    """
    out = model(input_ids=prompt_ids, use_cache=True)
    cache, logits = out.past_key_values, out.logits[:, -1]
    tokens, logps = [], []
    done = torch.zeros(prompt_ids.shape[0], dtype=torch.bool)
    for _ in range(max_new_tokens):
        logp = torch.log_softmax(logits.float() / temperature, dim=-1)
        tok = torch.multinomial(logp.exp(), 1, generator=generator).squeeze(-1)
        tok = torch.where(done, torch.full_like(tok, eos_id), tok)
        tokens.append(tok)
        logps.append(logp.gather(-1, tok[:, None]).squeeze(-1))
        done |= tok == eos_id
        if bool(done.all()):
            break
        out = model(input_ids=tok[:, None], past_key_values=cache, use_cache=True)
        cache, logits = out.past_key_values, out.logits[:, -1]
    tokens_t = torch.stack(tokens, dim=1)
    return tokens_t, torch.stack(logps, dim=1), completion_mask(tokens_t, eos_id)


def token_logprobs(
    model, prompt_ids: torch.Tensor, tokens: torch.Tensor, temperature: float = 1.0
) -> torch.Tensor:
    """log pi(token_t | prompt, tokens_<t) for every completion token (with gradient)."""
    full = torch.cat([prompt_ids, tokens], dim=1)
    logits = model(input_ids=full).logits[:, prompt_ids.shape[1] - 1 : -1].float()
    logp = torch.log_softmax(logits / temperature, dim=-1)
    return logp.gather(-1, tokens[..., None]).squeeze(-1)


@torch.no_grad()
def greedy(model, prompt_ids: torch.Tensor, max_new_tokens: int, eos_id: int) -> torch.Tensor:
    """Greedy completions (the policy's single best guess)."""
    seq = prompt_ids
    for _ in range(max_new_tokens):
        nxt = model(input_ids=seq).logits[:, -1].argmax(-1, keepdim=True)
        seq = torch.cat([seq, nxt], dim=1)
    return seq[:, prompt_ids.shape[1] :]
