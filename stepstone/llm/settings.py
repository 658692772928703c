"""Where the model is and how to use it, and the client that follows from it.

``Settings`` is where base URL, model and key are decided: from the arguments or, when not
given, from STEPSTONE_LLM_URL, STEPSTONE_LLM_MODEL and OPENAI_API_KEY (read here and nowhere
else). ``connect`` picks the backend: a URL ``local:PATH`` runs a ``transformers`` model
directory in this process (llm/local.py), any other URL is an OpenAI-compatible endpoint
(llm/remote.py).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .cache import Cache
from .errors import LLMError
from .local import LocalChat
from .model import ChatModel
from .remote import ChatClient, redact

URL_ENV, MODEL_ENV, KEY_ENV = "STEPSTONE_LLM_URL", "STEPSTONE_LLM_MODEL", "OPENAI_API_KEY"


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

    @property
    def local(self) -> str | None:
        """The model directory of a ``local:PATH`` URL; None for an HTTP endpoint."""
        url = self.url or ""
        return url.removeprefix("local:") if url.startswith("local:") else None

    def check(self) -> None:
        """A clear error now for a missing endpoint, model or model directory."""
        s = self.resolved()
        if s.local is not None:
            if not Path(s.local).is_dir():
                raise LLMError(
                    f"no model directory at {s.local!r}; give --llm-url "
                    "local:PATH with PATH a directory written by save_pretrained"
                )
            return
        client = s._remote(timeout=min(s.timeout, 10.0), max_retries=0)
        try:
            client.check()
        finally:
            client.close()

    def connect(self) -> ChatModel:
        """The client these settings describe (HTTP, or in-process for ``local:PATH``)."""
        s = self.resolved()
        cache = Cache(s.cache) if s.cache is not None else None
        if s.local is not None:
            return LocalChat(s.local, s.model, cache=cache, max_calls=s.budget,
                             max_tokens=s.max_tokens)  # fmt: skip
        return s._remote(cache=cache, max_concurrency=s.concurrency, timeout=s.timeout,
                         max_retries=s.retries, max_calls=s.budget, backoff=s.backoff,
                         max_tokens=s.max_tokens)  # fmt: skip

    def _remote(self, **options: Any) -> ChatClient:
        if not self.url and "://" in (self.model or ""):
            raise LLMError(
                f"--llm-model {self.model} looks like an address: give it as --llm-url, and "
                "the model's name (as the endpoint serves it) as --llm-model"
            )
        if not self.url or not self.model:
            raise LLMError(
                "no model endpoint: give --llm-url (e.g. http://localhost:8000/v1) and "
                f"--llm-model, or set {URL_ENV} and {MODEL_ENV}"
            )
        return ChatClient(self.url, self.model, self.key, **options)
