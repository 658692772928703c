"""Selectors: which cells to return to. ``make`` builds one by its registry name."""

from __future__ import annotations

from ..errors import ConfigError
from .base import Selector
from .count_based import CountBased
from .domain import DomainKnowledge
from .intrinsic import RDD, RND
from .knapsack import Knapsack
from .novelty import Novelty
from .uniform import Uniform

REGISTRY: dict[str, type[Selector]] = {
    "count": CountBased,
    "domain": DomainKnowledge,
    "uniform": Uniform,
    "knapsack": Knapsack,
    "novelty": Novelty,
    "rnd": RND,
    "rdd": RDD,
}


def make(name: str) -> Selector:
    try:
        return REGISTRY[name]()
    except KeyError:
        raise ConfigError(
            f"unknown selector {name!r}; choose one of {', '.join(REGISTRY)}"
        ) from None


__all__ = [
    "REGISTRY", "RDD", "RND", "CountBased", "DomainKnowledge", "Knapsack", "Novelty", "Selector",
    "Uniform", "make",
]  # fmt: skip
