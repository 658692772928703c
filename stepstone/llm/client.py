"""A chat model behind any OpenAI-compatible endpoint (vLLM, Ollama, llama.cpp server, hosted).

The ``openai`` package does the protocol, the timeouts and the retries (exponential backoff
on connection errors, 408/409/429 and 5xx); this module adds what exploration needs around it:

* a persistent cache of prompt -> reply in the run directory (SQLite), so a resumed run or a
  re-run with the same prompts costs nothing and gives the same answers;
* a bound on concurrent requests, and accounting of calls and tokens for the progress bar and
  the report (kept in the cache file too, so that worker processes and resumed runs add up);
* a budget of calls, counted in the cache file across processes and resumptions: past it,
  ``BudgetExhausted`` (the run stops where it is, resumable with a larger budget);
* errors that say what is wrong and what to do (nothing listening, unknown model, timeout),
  never a hang.

``Settings`` is where base URL, model and key are decided: from the arguments or, when not
given, from STEPSTONE_LLM_URL, STEPSTONE_LLM_MODEL and OPENAI_API_KEY (read here and nowhere
else). A URL ``local:PATH`` selects the in-process ``transformers`` backend (llm/local.py).
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ..errors import StepstoneError

URL_ENV, MODEL_ENV, KEY_ENV = "STEPSTONE_LLM_URL", "STEPSTONE_LLM_MODEL", "OPENAI_API_KEY"


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
    """prompt hash -> reply text, and a ledger of counters, in an SQLite file (WAL).

    The ledger holds what must add up across worker processes and resumed runs: calls made,
    tokens, cached answers, the calls reserved against the budget, and the roles' fallbacks.
    """

    def __init__(self, path: Path):
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=60)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")  # no fsync per counter update (WAL-safe)
        self.db.execute("CREATE TABLE IF NOT EXISTS replies (key TEXT PRIMARY KEY, reply TEXT)")
        self.db.execute(
            "CREATE TABLE IF NOT EXISTS ledger (name TEXT PRIMARY KEY, value INTEGER NOT NULL)"
        )
        self._lock = threading.Lock()

    def __getstate__(self):  # a worker process opens the file itself
        return {"path": self.path}

    def __setstate__(self, state):
        self.__init__(state["path"])

    def get(self, key: str) -> str | None:
        with self._lock:
            row = self.db.execute("SELECT reply FROM replies WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def put(self, key: str, reply: str) -> None:
        with self._lock:
            self.db.execute("INSERT OR REPLACE INTO replies VALUES (?, ?)", (key, reply))

    def add(self, counts: dict[str, int]) -> None:
        """Add to ledger counters (created at 0)."""
        with self._lock:
            self.db.executemany(
                "INSERT INTO ledger VALUES (?, ?) "
                "ON CONFLICT(name) DO UPDATE SET value = value + excluded.value",
                [(k, int(v)) for k, v in counts.items() if v],
            )

    def totals(self) -> dict[str, int]:
        with self._lock:
            return dict(self.db.execute("SELECT name, value FROM ledger").fetchall())

    def reserve(self, limit: int) -> bool:
        """Count one more call against ``limit``; False when ``limit`` calls were counted."""
        with self._lock:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                row = self.db.execute("SELECT value FROM ledger WHERE name = 'reserved'")
                used = (row.fetchone() or (0,))[0]
                if used >= limit:
                    return False
                self.db.execute("INSERT OR REPLACE INTO ledger VALUES ('reserved', ?)", (used + 1,))
                return True
            finally:
                self.db.execute("COMMIT")


class ChatModel:
    """What every backend shares: the reply cache, the call budget and the accounting.

    A backend defines ``_complete(messages, params) -> (reply, prompt_tokens,
    completion_tokens)`` and sets ``self.model``.
    """

    model: str
    where: str = "the model"

    def __init__(
        self,
        cache: Cache | None = None,
        max_calls: int | None = None,
        max_concurrency: int = 8,
    ):
        if max_calls is not None and max_calls < 0:
            raise LLMError(f"--llm-budget must be >= 0 calls, got {max_calls}")
        if max_concurrency < 1:
            raise LLMError(f"--llm-concurrency must be >= 1, got {max_concurrency}")
        self.cache = cache
        self.max_calls = max_calls
        self.max_concurrency = max_concurrency
        self.usage = Usage()
        self.counts: dict[str, int] = {}
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
            self.cache.add({"llm_cached": 1})
            return hit
        self._reserve()
        reply, prompt, completion = self._complete(messages, params)
        self.usage.add(prompt, completion)
        if self.cache is not None:
            self.cache.put(key, reply)
            self.cache.add({"llm_calls": 1, "llm_prompt_tokens": prompt,
                            "llm_completion_tokens": completion})  # fmt: skip
        return reply

    def chat_many(self, conversations: list[list[dict]], **params: Any) -> list[str]:
        """Replies to several conversations, at most ``max_concurrency`` requests at a time."""
        if len(conversations) <= 1:
            return [self.chat(m, **params) for m in conversations]
        with ThreadPoolExecutor(self.max_concurrency) as pool:
            return list(pool.map(lambda m: self.chat(m, **params), conversations))

    def count(self, name: str, n: int = 1) -> None:
        """Record an event of a role (e.g. a reply that named no valid action)."""
        with self.usage._lock:
            self.counts[name] = self.counts.get(name, 0) + n
        if self.cache is not None:
            self.cache.add({name: n})

    def totals(self) -> dict[str, int]:
        """Calls, tokens and role events of the whole run (all processes, all resumptions)
        when there is a cache file; of this client otherwise."""
        if self.cache is not None:
            t = self.cache.totals()
        else:
            t = {**self.usage.as_dict(), **self.counts}
        t.pop("reserved", None)
        return t

    def _reserve(self) -> None:
        if self.max_calls is None:
            return
        with self._budget_lock:
            if self.cache is not None:
                ok = self.cache.reserve(self.max_calls)
            else:
                ok = self._reserved < self.max_calls
                self._reserved += ok
        if not ok:
            raise BudgetExhausted(
                f"the budget of {self.max_calls} model calls is spent; continue with a "
                "larger --llm-budget (cached answers stay free)"
            )

    def _complete(self, messages: list[dict], params: dict) -> tuple[str, int, int]:
        raise NotImplementedError

    def models(self) -> list[str]:
        return [self.model]

    def close(self) -> None:
        pass


class ChatClient(ChatModel):
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
        s = Settings(base_url, model, api_key).resolved()
        if not s.url or not s.model:
            raise LLMError(
                "no model endpoint: give --llm-url (e.g. http://localhost:8000/v1) and "
                f"--llm-model, or set {URL_ENV} and {MODEL_ENV}"
            )
        super().__init__(cache, max_calls, max_concurrency)
        self.base_url, self.model = s.url, s.model
        self.where = f"the model at {self.base_url}"
        self._openai = openai
        self._client = openai.OpenAI(
            base_url=self.base_url,
            api_key=s.key or "none",
            timeout=timeout,
            max_retries=max_retries,
        )

    def _complete(self, messages: list[dict], params: dict) -> tuple[str, int, int]:
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
        except ValueError as e:  # a body that is not a chat completion (bad JSON, HTML page)
            raise LLMError(
                f"the endpoint at {self.base_url} did not answer with a chat completion ({e}); "
                "is the URL an OpenAI-compatible base (ending in /v1)?"
            ) from e
        choices = getattr(response, "choices", None)
        if not choices:
            raise LLMError(
                f"the endpoint at {self.base_url} answered without a chat completion "
                f"({str(response)[:120]!r}); is the URL an OpenAI-compatible base (ending in /v1)?"
            )
        usage = response.usage
        content = choices[0].message.content or ""
        return content, usage.prompt_tokens if usage else 0, usage.completion_tokens if usage else 0

    def models(self) -> list[str]:
        try:
            return [m.id for m in self._client.models.list()]
        except Exception:  # listing is a courtesy for the error message; never fatal
            return []

    def check(self) -> None:
        """Refuse now an endpoint that is not there or does not list the model; an endpoint
        that lists nothing is taken on trust (the first call will tell)."""
        openai = self._openai
        try:
            listed = [m.id for m in self._client.models.list()]
        except openai.APIConnectionError as e:  # timeouts included
            raise LLMError(
                f"cannot reach a model endpoint at {self.base_url} ({e}); is the server "
                "running, and is the URL its OpenAI-compatible base (ending in /v1)?"
            ) from e
        except Exception:
            return
        # Ollama lists "name:tag" and accepts the bare name.
        if listed and not any(m == self.model or m.startswith(f"{self.model}:") for m in listed):
            raise LLMError(
                f"the endpoint at {self.base_url} has no model {self.model!r}; it serves: "
                f"{', '.join(listed[:20])}; give one of them with --llm-model"
            )

    def close(self) -> None:
        self._client.close()


@dataclass(frozen=True)
class Settings:
    """Where the model is and how to use it; picklable, so worker processes build their own.

    The key is never written to the run directory; only ``model`` belongs to the run's
    configuration (a different model makes a different run).
    """

    url: str | None = None
    model: str | None = None
    key: str | None = field(default=None, repr=False)
    budget: int | None = None  # model calls for the whole run, across resumptions
    timeout: float = 60.0
    retries: int = 3
    concurrency: int = 8
    cache: Path | None = None  # the reply cache and ledger (in the run directory)

    def resolved(self) -> Settings:
        """Missing URL, model and key taken from the environment variables (only here)."""
        return replace(
            self,
            url=self.url or os.environ.get(URL_ENV) or None,
            model=self.model or os.environ.get(MODEL_ENV) or None,
            key=self.key or os.environ.get(KEY_ENV) or None,
        )

    def check(self) -> None:
        """A clear error now for a missing endpoint, model or model directory."""
        s = self.resolved()
        if s.url and s.url.startswith("local:"):
            if not Path(s.url.removeprefix("local:")).is_dir():
                raise LLMError(
                    f"no model directory at {s.url.removeprefix('local:')!r}; give --llm-url "
                    "local:PATH with PATH a directory written by save_pretrained"
                )
            return
        client = ChatClient(s.url, s.model, s.key, timeout=min(s.timeout, 10.0), max_retries=1)
        try:
            client.check()
        finally:
            client.close()

    def connect(self) -> ChatModel:
        """The client these settings describe (HTTP, or in-process for ``local:PATH``)."""
        s = self.resolved()
        cache = Cache(s.cache) if s.cache is not None else None
        if s.url and s.url.startswith("local:"):
            from .local import LocalChat

            return LocalChat(s.url.removeprefix("local:"), s.model, cache=cache,
                             max_calls=s.budget)  # fmt: skip
        return ChatClient(s.url, s.model, s.key, cache=cache, max_concurrency=s.concurrency,
                          timeout=s.timeout, max_retries=s.retries, max_calls=s.budget)  # fmt: skip
