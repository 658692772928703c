"""A chat model behind any OpenAI-compatible endpoint (vLLM, Ollama, llama.cpp server, hosted).

The ``openai`` package does the protocol; this module adds what exploration needs around it:

* retries that outlast a busy or restarting server: exponential backoff with jitter, the
  server's ``Retry-After`` honoured, a malformed body (not JSON, an HTML page, no choices)
  retried like a 5xx, up to ``retries`` attempts; a model that stays down raises
  ``ModelUnavailable`` naming the server, so the run commits and ``resume`` continues;
* a persistent cache of prompt -> reply in the run directory (SQLite), so a resumed run or a
  re-run with the same prompts costs nothing and gives the same answers; only replies the
  role could read are cached, so an unreadable one is neither reused nor counted twice;
* one request for identical prompts asked at the same time, by threads of this process or by
  other processes on the same cache file (worker processes);
* a bound on concurrent requests, and accounting of calls and tokens for the progress bar and
  the report (kept in the cache file too, so that worker processes and resumed runs add up);
* a budget of calls, counted in the cache file across processes and resumptions: past it,
  ``BudgetExhausted`` (the run stops where it is, resumable with a larger budget);
* a halt switch in the cache file: once the run has stopped, no process asks the model again
  (``Halted``);
* errors that say what is wrong and what to do (nothing listening, unknown model, timeout),
  never a hang, and never the credentials of a URL.

``Settings`` is where base URL, model and key are decided: from the arguments or, when not
given, from STEPSTONE_LLM_URL, STEPSTONE_LLM_MODEL and OPENAI_API_KEY (read here and nowhere
else). A URL ``local:PATH`` selects the in-process ``transformers`` backend (llm/local.py).
"""

from __future__ import annotations

import email.utils
import hashlib
import json
import os
import random
import sqlite3
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from ..errors import StepstoneError

URL_ENV, MODEL_ENV, KEY_ENV = "STEPSTONE_LLM_URL", "STEPSTONE_LLM_MODEL", "OPENAI_API_KEY"
MAX_WAIT = 60.0  # seconds: the longest pause between two attempts, Retry-After included


class LLMError(StepstoneError):
    """The model endpoint failed in a way retrying does not fix."""


class BudgetExhausted(LLMError):
    """The run's budget of model calls is spent."""


class ModelUnavailable(LLMError):
    """The endpoint kept failing (rate limits, 5xx, bad bodies, timeouts) through every retry."""


class Halted(LLMError):
    """The run has stopped: the roles ask nothing more (what is cached is still answered)."""


def redact(url: str | None) -> str | None:
    """``url`` without the user and password it may carry (``http://user:KEY@host``)."""
    if not url or "@" not in url:
        return url
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=host))


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


HIDDEN = ("reserved", "halted")  # ledger rows that are switches, not counts


class Cache:
    """prompt hash -> reply text, the requests in flight, and a ledger of counters, in an
    SQLite file (WAL).

    The ledger holds what must add up across worker processes and resumed runs: calls made,
    tokens, cached answers, the calls reserved against the budget, the roles' fallbacks, and
    the halt switch.
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
        self.db.execute(
            "CREATE TABLE IF NOT EXISTS inflight (key TEXT PRIMARY KEY, since REAL NOT NULL)"
        )
        self.db.execute(
            "CREATE TABLE IF NOT EXISTS judgements "
            "(role TEXT, cell TEXT, value REAL NOT NULL, PRIMARY KEY (role, cell))"
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

    def claim(self, key: str, stale: float) -> bool:
        """Mark ``key`` as asked by the caller; False while another process asks it (for
        less than ``stale`` seconds: a claim older than that is of a process that died)."""
        now = time.time()
        with self._lock:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                row = self.db.execute("SELECT since FROM inflight WHERE key = ?", (key,))
                since = row.fetchone()
                if since is not None and now - since[0] < stale:
                    return False
                self.db.execute("INSERT OR REPLACE INTO inflight VALUES (?, ?)", (key, now))
                return True
            finally:
                self.db.execute("COMMIT")

    def release(self, key: str) -> None:
        with self._lock:
            self.db.execute("DELETE FROM inflight WHERE key = ?", (key,))

    def remember(self, role: str, values: dict[str, float]) -> None:
        """Keep a role's judgement of cells (IGE verdicts, LFG scores) for resumed runs;
        cells are keyed by their ``repr``, which is compared, never evaluated."""
        with self._lock:
            self.db.executemany(
                "INSERT OR REPLACE INTO judgements VALUES (?, ?, ?)",
                [(role, k, float(v)) for k, v in values.items()],
            )

    def recall(self, role: str) -> dict[str, float]:
        with self._lock:
            rows = self.db.execute("SELECT cell, value FROM judgements WHERE role = ?", (role,))
            return dict(rows.fetchall())

    def add(self, counts: dict[str, int]) -> None:
        """Add to ledger counters (created at 0)."""
        with self._lock:
            self.db.executemany(
                "INSERT INTO ledger VALUES (?, ?) "
                "ON CONFLICT(name) DO UPDATE SET value = value + excluded.value",
                [(k, int(v)) for k, v in counts.items() if v],
            )

    def totals(self) -> dict[str, int]:
        """The counters (the switches left out)."""
        with self._lock:
            rows = self.db.execute("SELECT name, value FROM ledger").fetchall()
        return {k: v for k, v in rows if k not in HIDDEN}

    def set_halted(self, halted: bool) -> None:
        """Halt the run's model calls, or let a (re)started run call again: then nothing of
        an earlier session, killed perhaps mid-request, is in flight any more."""
        with self._lock:
            self.db.execute("INSERT OR REPLACE INTO ledger VALUES ('halted', ?)", (int(halted),))
            if not halted:
                self.db.execute("DELETE FROM inflight")

    def halted(self) -> bool:
        with self._lock:
            row = self.db.execute("SELECT value FROM ledger WHERE name = 'halted'").fetchone()
        return bool(row and row[0])

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
    """What every backend shares: the reply cache, one request per prompt at a time, the call
    budget, the halt switch and the accounting.

    A backend defines ``_complete(messages, params) -> (reply, prompt_tokens,
    completion_tokens)`` and sets ``self.model``.
    """

    model: str
    where: str = "the model"
    stale: float = 600.0  # seconds after which another process's claim on a prompt is dead

    def __init__(
        self,
        cache: Cache | None = None,
        max_calls: int | None = None,
        max_concurrency: int = 8,
        max_tokens: int | None = None,
    ):
        if max_tokens is not None and max_tokens < 1:
            raise LLMError(f"--llm-max-tokens must be >= 1, got {max_tokens}")
        if max_calls is not None and max_calls < 0:
            raise LLMError(f"--llm-budget must be >= 0 calls, got {max_calls}")
        if max_concurrency < 1:
            raise LLMError(f"--llm-concurrency must be >= 1, got {max_concurrency}")
        self.cache = cache
        self.max_calls = max_calls
        self.max_concurrency = max_concurrency
        self.max_tokens = max_tokens  # of each reply, when the role does not say
        self.usage = Usage()
        self.counts: dict[str, int] = {}
        self._budget_lock = threading.Lock()
        self._reserved = 0
        self._inflight: dict[str, Future] = {}
        self._inflight_lock = threading.Lock()
        self._halted = False

    def key(self, messages: list[dict], params: dict) -> str:
        blob = json.dumps([self.model, messages, params], sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()

    def chat(
        self, messages: list[dict], accept: Callable[[str], bool] | None = None, **params: Any
    ) -> str:
        """The model's reply to ``messages``: from the cache when it has been asked before,
        shared with any identical request in flight, else asked now. ``accept(reply)``
        tells whether the role could read the reply; only such replies are cached."""
        if self.max_tokens is not None:
            params = {"max_tokens": self.max_tokens, **params}
        key = self.key(messages, params)
        if self.cache is not None and (hit := self.cache.get(key)) is not None:
            return self._cached(hit)
        with self._inflight_lock:
            first = key not in self._inflight
            if first:
                self._inflight[key] = Future()
            future = self._inflight[key]
        if not first:  # the same request from another thread: its reply is this one's
            reply = future.result()
            with self.usage._lock:
                self.usage.cached += 1
            return reply
        try:
            reply = self._ask(key, messages, params, accept)
            future.set_result(reply)
            return reply
        except BaseException as e:
            future.set_exception(e)
            raise
        finally:
            with self._inflight_lock:
                del self._inflight[key]

    def _cached(self, hit: str) -> str:
        assert self.cache is not None  # a hit is only ever read from the cache
        with self.usage._lock:
            self.usage.cached += 1
        self.cache.add({"llm_cached": 1})
        return hit

    def _ask(self, key: str, messages: list[dict], params: dict, accept) -> str:
        """Ask the model, unless another process asks the same now (then wait for its reply)."""
        if self.cache is not None:
            while not self.cache.claim(key, self.stale):
                time.sleep(0.05)
                if (hit := self.cache.get(key)) is not None:
                    return self._cached(hit)
            if (hit := self.cache.get(key)) is not None:  # answered while we were claiming
                self.cache.release(key)
                return self._cached(hit)
        try:
            if self.halted():
                raise Halted("the run has stopped; the model is asked nothing more")
            self._reserve()
            reply, prompt, completion = self._complete(messages, params)
            self.usage.add(prompt, completion)
            if self.cache is not None:
                if accept is None or accept(reply):
                    self.cache.put(key, reply)
                self.cache.add({"llm_calls": 1, "llm_prompt_tokens": prompt,
                                "llm_completion_tokens": completion})  # fmt: skip
            return reply
        finally:
            if self.cache is not None:
                self.cache.release(key)

    def chat_many(
        self,
        conversations: list[list[dict]],
        accept=None,
        each: list[dict] | None = None,
        **params: Any,
    ) -> list[str]:
        """Replies to several conversations, at most ``max_concurrency`` requests at a time;
        ``each`` adds parameters of each request (e.g. its seed) to the shared ``params``."""
        each = each or [{}] * len(conversations)
        asks = list(zip(conversations, each, strict=True))
        if len(asks) <= 1:
            return [self.chat(m, accept, **params, **e) for m, e in asks]
        with ThreadPoolExecutor(self.max_concurrency) as pool:
            return list(pool.map(lambda a: self.chat(a[0], accept, **params, **a[1]), asks))

    def recall(self, role: str) -> dict[str, float]:
        """A role's judgements kept in the run directory (empty without a cache file)."""
        return self.cache.recall(role) if self.cache is not None else {}

    def remember(self, role: str, values: dict[str, float]) -> None:
        if self.cache is not None and values:
            self.cache.remember(role, values)

    def halt(self, halted: bool = True) -> None:
        """Stop (or allow again) every model call of the run, in all its processes."""
        self._halted = halted
        if self.cache is not None:
            self.cache.set_halted(halted)

    def halted(self) -> bool:
        return self._halted or (self.cache is not None and self.cache.halted())

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
            return self.cache.totals()
        return {**self.usage.as_dict(), **self.counts}

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


class _Retry(Exception):
    """A failure worth another attempt: what went wrong, and how long the server asked to
    wait (``Retry-After``), if it did."""

    def __init__(self, what: str, wait: float | None = None):
        super().__init__(what)
        self.wait = wait


def retry_after(response: Any) -> float | None:
    """Seconds from a ``Retry-After`` header (a number or an HTTP date), None without one."""
    value = getattr(response, "headers", {}).get("retry-after") if response is not None else None
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(when.timestamp() - time.time(), 0.0)


class ChatClient(ChatModel):
    def __init__(
        self,
        base_url: str | None = None,
        model: str | None = None,
        api_key: str | None = None,
        cache: Cache | None = None,
        max_concurrency: int = 8,
        timeout: float = 60.0,
        max_retries: int = 8,
        max_calls: int | None = None,
        backoff: float = 1.0,
        max_tokens: int | None = None,
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
        if max_retries < 0:
            raise LLMError(f"--llm-retries must be >= 0, got {max_retries}")
        super().__init__(cache, max_calls, max_concurrency, max_tokens)
        self.base_url, self.model = s.url, s.model
        self.where = f"the model at {redact(self.base_url)}"
        self.retries, self.backoff, self.timeout = max_retries, backoff, timeout
        self.stale = timeout * (max_retries + 1) + MAX_WAIT * max_retries
        self.structured = True  # until the server refuses response_format
        self._openai = openai
        self._client = openai.OpenAI(
            base_url=self.base_url, api_key=s.key or "none", timeout=timeout, max_retries=0
        )

    def _complete(self, messages: list[dict], params: dict) -> tuple[str, int, int]:
        """One reply, retried with exponential backoff and full jitter (at least half the
        step), or after the server's Retry-After, up to ``retries`` more attempts."""
        started = time.monotonic()
        for attempt in range(self.retries + 1):
            try:
                return self._request(messages, params)
            except _Retry as e:
                if attempt == self.retries:
                    raise ModelUnavailable(
                        f"{e} ({attempt + 1} attempts over {time.monotonic() - started:.0f} s); "
                        "the run is saved: resume it when the server is back, or allow more "
                        "with --llm-retries"
                    ) from None
                step = min(self.backoff * 2**attempt, MAX_WAIT)
                wait = e.wait if e.wait is not None else step * (0.5 + random.random() / 2)
                sleep(min(wait, MAX_WAIT))
        raise AssertionError("unreachable")

    def _request(self, messages: list[dict], params: dict) -> tuple[str, int, int]:
        openai, where = self._openai, self.where
        if not self.structured:
            params = {k: v for k, v in params.items() if k != "response_format"}
        try:
            response = self._client.chat.completions.create(
                model=self.model,
                messages=messages,  # type: ignore[arg-type]  # plain dicts, not openai's TypedDicts
                **params,  # type: ignore[arg-type]
            )
        except openai.APITimeoutError as e:
            raise _Retry(f"{where} did not answer in time ({e})") from e
        except openai.APIConnectionError as e:
            raise _Retry(
                f"cannot reach a model endpoint at {redact(self.base_url)} ({e}); is the server "
                "running, and is the URL its OpenAI-compatible base (ending in /v1)?"
            ) from e
        except openai.NotFoundError as e:
            raise LLMError(
                f"{where} has no model {self.model!r} ({e}); "
                f"it serves: {', '.join(self.models()) or 'nothing it lists'}"
            ) from e
        except openai.BadRequestError as e:
            if "response_format" in params and self.structured:
                self.structured = False  # a server without structured output: ask plainly
                return self._request(messages, params)
            raise LLMError(f"{where} refused the request (400: {e.message})") from e
        except openai.APIStatusError as e:
            what = f"{where} answered {e.status_code}: {e.message}"
            if e.status_code in (408, 409, 429) or e.status_code >= 500:
                raise _Retry(what, retry_after(e.response)) from e
            raise LLMError(what) from e
        except (ValueError, openai.APIResponseValidationError) as e:  # not JSON, an HTML page
            raise _Retry(f"{where} did not answer with a chat completion ({e})") from e
        choices = getattr(response, "choices", None)
        message = getattr(choices[0], "message", None) if choices else None
        if message is None:
            raise _Retry(f"{where} did not answer with a chat completion ({str(response)[:120]!r})")
        usage = response.usage
        content = message.content or ""
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
                f"cannot reach a model endpoint at {redact(self.base_url)} ({e}); is the server "
                "running, and is the URL its OpenAI-compatible base (ending in /v1)?"
            ) from e
        except Exception:
            return
        # Ollama lists "name:tag" and accepts the bare name.
        if listed and not any(m == self.model or m.startswith(f"{self.model}:") for m in listed):
            raise LLMError(
                f"{self.where} has no model {self.model!r}; it serves: "
                f"{', '.join(listed[:20])}; give one of them with --llm-model"
            )

    def close(self) -> None:
        self._client.close()


def sleep(seconds: float) -> None:
    """The pause between attempts (a module function, so tests can record it)."""
    time.sleep(seconds)


@dataclass(frozen=True)
class Settings:
    """Where the model is and how to use it; picklable, so worker processes build their own.

    The key is never written to the run directory (nor the credentials a URL may carry:
    ``stored_url``); only ``model`` belongs to the run's configuration (a different model
    makes a different run).
    """

    url: str | None = None
    model: str | None = None
    key: str | None = field(default=None, repr=False)
    budget: int | None = None  # model calls for the whole run, across resumptions
    timeout: float = 60.0  # seconds per request
    retries: int = 8  # more attempts after a failed one (1, 2, 4 ... 60 s apart: ~3 minutes)
    backoff: float = 1.0  # seconds before the first retry; doubled each time
    max_tokens: int | None = None  # of a reply (None: the server's default; local: 256)
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

    @property
    def stored_url(self) -> str | None:
        """The URL as the run directory keeps it: without user and password."""
        return redact(self.url)

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
        client = ChatClient(s.url, s.model, s.key, timeout=min(s.timeout, 10.0), max_retries=0)
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
                             max_calls=s.budget, max_tokens=s.max_tokens)  # fmt: skip
        return ChatClient(s.url, s.model, s.key, cache=cache, max_concurrency=s.concurrency,
                          timeout=s.timeout, max_retries=s.retries, max_calls=s.budget,
                          backoff=s.backoff, max_tokens=s.max_tokens)  # fmt: skip
