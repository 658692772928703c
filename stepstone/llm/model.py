"""What every chat model backend shares, whatever serves the model.

``ChatModel`` answers ``chat``/``chat_many`` from the reply cache when it can (llm/cache.py),
sends identical prompts asked at the same time once, counts each call against the run's
budget (``BudgetExhausted`` past it), asks nothing once the run has halted (``Halted``), and
keeps the accounting the progress bar and the report show. A backend only says how one reply
is made: ``remote.ChatClient`` over HTTP, ``local.LocalChat`` in this process.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from .cache import Cache
from .errors import BudgetExhausted, Halted, LLMError


@dataclass
class Usage:
    """This process's calls and tokens (the ledger in the cache file adds up all processes)."""

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
