"""A chat model behind any OpenAI-compatible endpoint (vLLM, Ollama, llama.cpp server, hosted).

The ``openai`` package does the protocol, the timeouts and the retries (exponential backoff
on connection errors, 408/409/429 and 5xx); this module adds what exploration needs around it:

* a persistent cache of prompt -> reply in the run directory (SQLite), so a resumed run or a
  re-run with the same prompts costs nothing and gives the same answers;
* a bound on concurrent requests, and accounting of calls and tokens for the progress bar and
  the report;
* a budget of calls: past it, ``BudgetExhausted`` (the run stops where it is, resumable);
* errors that say what is wrong and what to do (nothing listening, unknown model, timeout),
  never a hang.

Base URL, model and key come from the arguments or, when not given, from STEPSTONE_LLM_URL,
STEPSTONE_LLM_MODEL and OPENAI_API_KEY (read once, here, where the client is built).
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import StepstoneError


class LLMError(StepstoneError):
    """The model endpoint failed in a way retrying does not fix."""


class BudgetExhausted(LLMError):
    """The run's budget of model calls is spent."""


@dataclass
class Usage:
    calls: int = 0  # requests that reached the model
    cached: int = 0  # answers served from the cache
    prompt_tokens: int = 0
    completion_tokens: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, prompt: int, completion: int) -> None:
        with self._lock:
            self.calls += 1
            self.prompt_tokens += prompt
            self.completion_tokens += completion

    def as_dict(self) -> dict:
        return {"llm_calls": self.calls, "llm_cached": self.cached,
                "llm_prompt_tokens": self.prompt_tokens,
                "llm_completion_tokens": self.completion_tokens}  # fmt: skip


class Cache:
    """prompt hash -> reply text, in an SQLite file that survives crashes (WAL)."""

    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("CREATE TABLE IF NOT EXISTS replies (key TEXT PRIMARY KEY, reply TEXT)")
        self._lock = threading.Lock()

    def get(self, key: str) -> str | None:
        with self._lock:
            row = self.db.execute("SELECT reply FROM replies WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def put(self, key: str, reply: str) -> None:
        with self._lock:
            self.db.execute("INSERT OR REPLACE INTO replies VALUES (?, ?)", (key, reply))


class ChatClient:
    def __init__(
        self,
        base_url: str | None = None,
        model: str | None = None,
        api_key: str | None = None,
        cache: Cache | None = None,
        max_concurrency: int = 8,
        timeout: float = 60.0,
        max_retries: int = 3,
        max_calls: int | None = None,
    ):
        try:
            import openai
        except ImportError:
            raise LLMError(
                "model endpoints need the openai package: pip install 'stepstone[llm]'"
            ) from None
        self.base_url = base_url or os.environ.get("STEPSTONE_LLM_URL")
        self.model = model or os.environ.get("STEPSTONE_LLM_MODEL")
        if not self.base_url or not self.model:
            raise LLMError(
                "no model endpoint: give --llm-url (e.g. http://localhost:8000/v1) and "
                "--llm-model, or set STEPSTONE_LLM_URL and STEPSTONE_LLM_MODEL"
            )
        self._openai = openai
        self._client = openai.OpenAI(
            base_url=self.base_url,
            api_key=api_key or os.environ.get("OPENAI_API_KEY") or "none",
            timeout=timeout,
            max_retries=max_retries,
        )
        self.cache = cache
        self.max_calls = max_calls
        self.max_concurrency = max_concurrency
        self.usage = Usage()
        self._budget_lock = threading.Lock()
        self._reserved = 0

    def key(self, messages: list[dict], params: dict) -> str:
        blob = json.dumps([self.model, messages, params], sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()

    def chat(self, messages: list[dict], **params: Any) -> str:
        """The model's reply to ``messages`` (from the cache when it has been asked before)."""
        key = self.key(messages, params)
        if self.cache is not None and (hit := self.cache.get(key)) is not None:
            with self.usage._lock:
                self.usage.cached += 1
            return hit
        self._reserve()
        reply = self._call(messages, params)
        if self.cache is not None:
            self.cache.put(key, reply)
        return reply

    def chat_many(self, conversations: list[list[dict]], **params: Any) -> list[str]:
        """Replies to several conversations, at most ``max_concurrency`` requests at a time."""
        with ThreadPoolExecutor(self.max_concurrency) as pool:
            return list(pool.map(lambda m: self.chat(m, **params), conversations))

    def _reserve(self) -> None:
        with self._budget_lock:
            if self.max_calls is not None and self._reserved >= self.max_calls:
                raise BudgetExhausted(
                    f"the budget of {self.max_calls} model calls is spent; continue with a "
                    "larger --llm-calls (cached answers stay free)"
                )
            self._reserved += 1

    def _call(self, messages: list[dict], params: dict) -> str:
        openai = self._openai
        try:
            response = self._client.chat.completions.create(
                model=self.model,
                messages=messages,
                **params,  # type: ignore[arg-type]
            )
        except openai.APITimeoutError as e:
            raise LLMError(f"the model at {self.base_url} did not answer in time ({e})") from e
        except openai.APIConnectionError as e:
            raise LLMError(
                f"cannot reach a model endpoint at {self.base_url} ({e}); is the server "
                "running, and is the URL its OpenAI-compatible base (ending in /v1)?"
            ) from e
        except openai.NotFoundError as e:
            raise LLMError(
                f"the endpoint at {self.base_url} has no model {self.model!r} ({e}); "
                f"it serves: {', '.join(self.models()) or 'nothing it lists'}"
            ) from e
        except openai.APIStatusError as e:
            raise LLMError(f"the model endpoint answered {e.status_code}: {e.message}") from e
        usage = response.usage
        self.usage.add(usage.prompt_tokens if usage else 0, usage.completion_tokens if usage else 0)
        return response.choices[0].message.content or ""

    def models(self) -> list[str]:
        try:
            return [m.id for m in self._client.models.list()]
        except Exception:  # listing is a courtesy for the error message; never fatal
            return []
