"""Foundation models in the exploration loop.

``settings.py``: where the model is (``Settings`` -> a client, ``connect``); ``model.py``: what
every backend shares (reply cache, call budget, halt switch, accounting: ``ChatModel``), on
the run directory's file of ``cache.py``; ``remote.py``: any OpenAI-compatible endpoint, with
retries; ``local.py``: a ``transformers`` model directory in this process; ``errors.py``: what
goes wrong; ``prompts.py``: the roles' templates (overridable) and the reading of a reply's
final answer; ``memory.py``: the last exchanges sent with each prompt; ``view.py``: an
environment as text (goal, state, admissible actions); ``judge.py``: the archive filter of
Intelligent Go-Explore. The selecting and exploring roles are ``selectors/ige.py``,
``selectors/lfg.py`` and ``explorers/llm.py``.
"""

from .cache import Cache
from .errors import BudgetExhausted, Halted, LLMError, ModelUnavailable
from .judge import Judge
from .local import LocalChat
from .model import ChatModel
from .prompts import Prompts
from .remote import ChatClient
from .settings import Settings

__all__ = [
    "BudgetExhausted", "Cache", "ChatClient", "ChatModel", "Halted", "Judge", "LLMError",
    "LocalChat", "ModelUnavailable", "Prompts", "Settings",
]  # fmt: skip
