"""Foundation models in the exploration loop.

``client.py``: any OpenAI-compatible endpoint (``Settings`` -> a client with retries, a reply
cache, a call budget, a halt switch and accounting); ``local.py``: the same interface on a
``transformers`` model directory; ``prompts.py``: the roles' templates (overridable) and the
reading of a reply's final answer; ``memory.py``: the last exchanges sent with each prompt;
``view.py``: an environment as text (goal, state, admissible actions); ``judge.py``: the
archive filter of Intelligent Go-Explore. The selecting and exploring roles are
``selectors/ige.py``, ``selectors/lfg.py`` and ``explorers/llm.py``.
"""

from .client import (
    BudgetExhausted,
    Cache,
    ChatClient,
    ChatModel,
    Halted,
    LLMError,
    ModelUnavailable,
    Settings,
)
from .judge import Judge
from .prompts import Prompts

__all__ = [
    "BudgetExhausted", "Cache", "ChatClient", "ChatModel", "Halted", "Judge", "LLMError",
    "ModelUnavailable", "Prompts", "Settings",
]  # fmt: skip
