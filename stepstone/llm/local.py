"""A chat model run in this process with ``transformers``, for a local model directory.

The same interface as the HTTP client (``chat``, ``chat_many``, cache, budget, accounting:
``ChatModel``, llm/model.py), so every role works with either. Use it as
``--llm-url local:PATH`` where PATH is a directory ``save_pretrained`` wrote (model and
tokenizer). Generation is greedy at temperature 0 and seeded sampling otherwise (the
request's ``seed``), so a cached reply is the reply the model would give again. Requests run
one at a time (one model in memory; on a CPU, parallel generation only contends for the same
cores).
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from .cache import Cache
from .errors import LLMError
from .model import ChatModel


def _plain_prompt(messages: list[dict]) -> str:
    """A transcript for tokenizers without a chat template (e.g. a base model)."""
    lines = [f"{m['role']}: {m['content']}" for m in messages]
    return "\n".join([*lines, "assistant:"])


class LocalChat(ChatModel):
    def __init__(
        self,
        path: str | Path | None = None,
        model_name: str | None = None,
        cache: Cache | None = None,
        max_calls: int | None = None,
        max_tokens: int | None = None,
        model: Any = None,
        tokenizer: Any = None,
    ):
        super().__init__(cache, max_calls, max_concurrency=1, max_tokens=max_tokens or 256)
        try:
            import torch  # noqa: F401
            from transformers import AutoModelForCausalLM, AutoTokenizer
        except ImportError:
            raise LLMError(
                "local models need torch and transformers: pip install 'stepstone[llm]'"
            ) from None
        if model is None or tokenizer is None:
            if path is None or not Path(path).is_dir():
                raise LLMError(
                    f"no model directory at {path!r}; give --llm-url local:PATH with PATH a "
                    "directory written by save_pretrained (config, weights and tokenizer)"
                )
            try:
                tokenizer = tokenizer or AutoTokenizer.from_pretrained(path)
                model = model or AutoModelForCausalLM.from_pretrained(path)
            except (OSError, ValueError) as e:
                raise LLMError(f"cannot load a causal language model from {path} ({e})") from e
        self.model = model_name or (Path(path).name if path else type(model).__name__)
        self.where = f"the local model {self.model}"
        self.net = model.eval()
        self.tokenizer = tokenizer
        self._lock = threading.Lock()

    def _prompt(self, messages: list[dict]) -> str:
        if getattr(self.tokenizer, "chat_template", None):
            return self.tokenizer.apply_chat_template(
                messages, tokenize=False, add_generation_prompt=True
            )
        return _plain_prompt(messages)

    def _complete(self, messages: list[dict], params: dict) -> tuple[str, int, int]:
        import torch

        tok = self.tokenizer
        ids = tok(self._prompt(messages), return_tensors="pt")["input_ids"]
        limit = getattr(self.net.config, "max_position_embeddings", None) or getattr(
            self.net.config, "n_positions", None
        )
        new = int(params["max_tokens"])  # room to reason, then answer (IGE asks up to 1000)
        if limit is not None and ids.shape[1] + new > limit:
            ids = ids[:, -(limit - new) :]  # keep the end: the question comes last
        temperature = float(params.get("temperature") or 0.0)
        sample: dict[str, Any] = {"do_sample": False}
        if temperature > 0:
            sample = {"do_sample": True, "temperature": temperature, "top_k": 0}
        with self._lock, torch.no_grad(), torch.random.fork_rng():
            torch.manual_seed(int(params.get("seed") or 0))
            out = self.net.generate(
                ids,
                attention_mask=torch.ones_like(ids),
                max_new_tokens=new,
                **sample,
                pad_token_id=tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id,
            )
        completion = out[0, ids.shape[1] :]
        return tok.decode(completion, skip_special_tokens=True), int(ids.shape[1]), len(completion)
