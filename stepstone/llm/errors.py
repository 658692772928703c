"""What goes wrong with a model: errors the roles and the runner catch by kind.

``BudgetExhausted`` and ``ModelUnavailable`` stop a run where it is (it stays resumable);
``Halted`` tells a role that the run has stopped; any other ``LLMError`` is bad input.
"""

from __future__ import annotations

from ..errors import StepstoneError


class LLMError(StepstoneError):
    """The model endpoint failed in a way retrying does not fix."""


class BudgetExhausted(LLMError):
    """The run's budget of model calls is spent."""


class ModelUnavailable(LLMError):
    """The endpoint kept failing (rate limits, 5xx, bad bodies, timeouts) through every retry."""


class Halted(LLMError):
    """The run has stopped: the roles ask nothing more (what is cached is still answered)."""
