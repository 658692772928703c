"""Selectors: which cells to return to. ``REGISTRY`` names them; ``make`` builds one by name.

A new selector is a file here with a ``Selector`` subclass and one line in ``REGISTRY``; a
user's own is registered from their module (``selectors.register("mine", Mine)``), given
with ``--import``.
"""

from __future__ import annotations

import inspect
from typing import Any

from ..errors import ConfigError
from ..options import check_types, parameter_error
from ..registry import Registry
from .base import Selector

# The classes importable from here before the registry existed; a new selector need not be.
from .count_based import CountBased
from .domain import DomainKnowledge, DomainReleased
from .ige import IGE
from .intrinsic import RDD, RND
from .knapsack import Knapsack
from .lfg import LFG
from .novelty import Novelty
from .seen import TimesSeen
from .uniform import Uniform

REGISTRY: Registry[type[Selector]] = Registry("selector", Selector, {
    "count": ".count_based:CountBased",
    "seen": ".seen:TimesSeen",
    "domain": ".domain:DomainKnowledge",
    "domain-released": ".domain:DomainReleased",
    "uniform": ".uniform:Uniform",
    "knapsack": ".knapsack:Knapsack",
    "knapsack-new": ".knapsack:KnapsackNew",
    "clustered": ".clustered:Clustered",
    "novelty": ".novelty:Novelty",
    "rnd": ".intrinsic:RND",
    "rdd": ".intrinsic:RDD",
    "ige": ".ige:IGE",
    "lfg": ".lfg:LFG",
}, __name__)  # fmt: skip
register = REGISTRY.register
# What --selector accepts besides the registered names: resolved by ``default`` when the
# configuration is made, so a run directory stores the selector it ran with.
AUTO = "auto"


def choices() -> list[str]:
    """The names ``--selector`` accepts (``auto`` and the registered selectors)."""
    return [AUTO, *REGISTRY]


def default(frames: bool, shards: int) -> str:
    """What ``--selector auto`` means: ``clustered`` where the cells are downscaled frames
    and the archive is one, ``count`` otherwise.

    Clustered was ahead of every other selector on Montezuma's Revenge from pixels (22, 21,
    21 rooms at 50M frames on 3 seeds, count 17, 21, 19) and worse than count on Hopper's
    bins (bench/README.md, "Clustered selection"); it weighs clusters across the whole
    archive, which shards cannot do. Dynamic downscaling keeps count: clustered on it is
    measured at 10M frames only (19, 14, 12 rooms against count's 10, 9, 17; "Clustered
    selection on dynamic cells"), too early to change a default.
    """
    return "clustered" if frames and shards == 1 else "count"


def make(name: str, **kwargs: Any) -> Selector:
    """The selector registered as ``name``, built with ``kwargs``.

    Raises:
        ConfigError: no selector has that name, or it takes no such parameters.
    """
    cls = REGISTRY[name]
    check_types(cls, kwargs, "--selector-param")
    try:
        return cls(**kwargs)
    except TypeError as e:
        message = f"invalid parameters {kwargs} for the {name} selector: {e}"
        raise parameter_error(cls, e, message) from e


# What the runner gives a selector that asks a model (runner.model_roles), never a user.
RUN_GIVEN = frozenset({"model", "goal", "prompts", "describe", "memory"})


def check_params(name: str, params: dict[str, Any]) -> None:
    """Refuse ``--selector-param`` values the selector ``name`` does not take, before a run
    directory is written: by building it, or, for one that asks a model (built only with
    the model), by its parameters' names.

    Raises:
        ConfigError: a parameter the selector does not take, or a value it refuses.
    """
    if not params:
        return
    for key, value in params.items():
        if isinstance(value, (dict, list)):
            raise ConfigError(
                f"--selector-param {key} takes a number, true/false or text, not {value!r}"
            )
    cls = REGISTRY[name]
    if cls.uses_model:
        check_types(cls, params, "--selector-param")
        given = sorted(set(params) & RUN_GIVEN)
        if given:
            raise ConfigError(
                f"--selector-param {given[0]} is given by the run (--llm-model, --goal, "
                "--llm-prompts), not as a parameter of the selector"
            )
        try:
            inspect.signature(cls).bind_partial(**params)
        except TypeError as e:
            message = f"invalid parameters {params} for the {name} selector: {e}"
            raise parameter_error(cls, e, message) from e
    else:
        make(name, **params)


def uses_model(name: str) -> bool:
    """Whether the selector registered as ``name`` asks a language model (``--llm-model``)."""
    return REGISTRY[name].uses_model


__all__ = [
    "IGE", "LFG", "RDD", "REGISTRY", "RND", "CountBased", "DomainKnowledge", "DomainReleased",
    "Knapsack", "Novelty", "Selector", "TimesSeen", "Uniform", "check_params", "choices",
    "default", "make", "register", "uses_model",
]  # fmt: skip
