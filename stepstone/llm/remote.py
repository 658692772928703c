"""A chat model behind any OpenAI-compatible endpoint (vLLM, Ollama, llama.cpp server, hosted).

The ``openai`` package does the protocol; ``ChatClient`` adds what exploration needs around it
(the cache, budget and accounting come from ``ChatModel``, llm/model.py):

* retries that outlast a busy or restarting server: exponential backoff with jitter, the
  server's ``Retry-After`` honoured, a malformed body (not JSON, an HTML page, no choices)
  retried like a 5xx, up to ``retries`` attempts; a model that stays down raises
  ``ModelUnavailable`` naming the server, so the run commits and ``resume`` continues;
* a server without structured output asked again without ``response_format``;
* errors that say what is wrong and what to do (nothing listening, unknown model, timeout),
  never a hang, and never the credentials of a URL (``redact``).

It reads no environment variables: ``Settings`` (llm/settings.py) does, and builds it.
"""

from __future__ import annotations

import email.utils
import random
import time
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from .cache import Cache
from .errors import LLMError, ModelUnavailable
from .model import ChatModel

MAX_WAIT = 60.0  # seconds: the longest pause between two attempts, Retry-After included


def redact(url: str | None) -> str | None:
    """``url`` without the user and password it may carry (``http://user:KEY@host``)."""
    if not url or "@" not in url:
        return url
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=host))


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
    """An OpenAI-compatible endpoint: ``base_url`` (ending in /v1) serving ``model``."""

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
        if not base_url or not model:
            raise LLMError(
                "no model endpoint: give a base URL (--llm-url, e.g. http://localhost:8000/v1) "
                "and a model (--llm-model)"
            )
        if max_retries < 0:
            raise LLMError(f"--llm-retries must be >= 0, got {max_retries}")
        super().__init__(cache, max_calls, max_concurrency, max_tokens)
        self.base_url, self.model = base_url, model
        self.where = f"the model at {redact(self.base_url)}"
        self.retries, self.backoff, self.timeout = max_retries, backoff, timeout
        self.stale = timeout * (max_retries + 1) + MAX_WAIT * max_retries
        self.structured = True  # until the server refuses response_format
        self._openai = openai
        self._client = openai.OpenAI(
            base_url=base_url, api_key=api_key or "none", timeout=timeout, max_retries=0
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
