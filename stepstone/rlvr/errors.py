"""Bad input to the RLVR parts: rewards, groups and budgets a user can fix.

All are :class:`~stepstone.errors.StepstoneError` subclasses, so the CLI reports them as one
line and exit code 2; each message says what was wrong and what to do instead.
"""

from __future__ import annotations

from ..errors import ConfigError, StepstoneError


class RewardError(StepstoneError):
    """A reward function returned something that is not a finite number."""


class EmptyGroupError(StepstoneError):
    """A group of rollouts for one prompt is empty, so it has no baseline."""


class BudgetError(ConfigError):
    """A rollout budget cannot be split under the per-prompt minimum and maximum."""


class MissingExtraError(StepstoneError):
    """An optional dependency of stepstone.rlvr is not installed."""


__all__ = ["BudgetError", "EmptyGroupError", "MissingExtraError", "RewardError"]
