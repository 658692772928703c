"""Exploration for RL with verifiable rewards: prompts are the archive, rollouts explorations.

The same idea as the Go-Explore engine one level up: a run keeps state per prompt
(``state.PromptStore``), an allocator decides how many rollouts each prompt gets under a fixed
budget (``allocate``), and the GRPO-family parts (``advantages``, ``losses``, ``batches``,
``latr``) turn rollouts into updates. ``trl.StepstoneGRPOTrainer`` plugs them into TRL.
The torch parts need the ``rlvr`` extra; allocate/state/advantages/batches need only numpy.
"""

from .allocate import REGISTRY as ALLOCATORS
from .allocate import XRPO, Allocator, Knapsack, Uniform, knapsack_value, make_allocator
from .errors import BudgetError, EmptyGroupError, RewardError
from .state import PromptStats, PromptStore, Visit

__all__ = [
    "ALLOCATORS", "XRPO", "Allocator", "BudgetError", "EmptyGroupError", "Knapsack",
    "PromptStats", "PromptStore", "RewardError", "Uniform", "Visit", "knapsack_value",
    "make_allocator",
]  # fmt: skip
