"""Selectors: which cells to return to. ``make`` builds one by its registry name."""

from __future__ import annotations

from ..errors import ConfigError
from .base import Selector
from .count_based import CountBased
from .domain import DomainKnowledge, DomainReleased
from .ige import IGE
from .intrinsic import RDD, RND
from .knapsack import Knapsack
from .lfg import LFG
from .novelty import Novelty
from .uniform import Uniform

REGISTRY: dict[str, type[Selector]] = {
    "count": CountBased,
    "domain": DomainKnowledge,
    "domain-released": DomainReleased,
    "uniform": Uniform,
    "knapsack": Knapsack,
    "novelty": Novelty,
    "rnd": RND,
    "rdd": RDD,
    "ige": IGE,
    "lfg": LFG,
}
# Selectors that ask a language model: built with model=, goal=, prompts= (runner.py).
MODEL_SELECTORS = ("ige", "lfg")


def make(name: str, **kwargs) -> Selector:
    try:
        cls = REGISTRY[name]
    except KeyError:
        raise ConfigError(
            f"unknown selector {name!r}; choose one of {', '.join(REGISTRY)}"
        ) from None
    return cls(**kwargs)


__all__ = [
    "IGE", "LFG", "MODEL_SELECTORS", "REGISTRY", "RDD", "RND", "CountBased", "DomainKnowledge",
    "Knapsack", "Novelty", "Selector", "Uniform", "make",
]  # fmt: skip
