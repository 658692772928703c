"""Cell functions: state -> key. ``REGISTRY`` names the kinds; ``make`` builds one by name.

A new cell kind is a file here with a ``CellFn`` subclass and one line in ``REGISTRY``; a
user's own is registered from their module (``cells.register("mine", Mine)``), given with
``--import``. Besides the registered kinds, ``--cells`` takes ``auto`` (the environment's
default, ``resolve``) and ``module:function`` (a plain function of the observation,
cells/custom.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..options import check_types, parameter_error
from ..registry import Registry
from .base import AdaptiveCells, CellFn, CellRule, DriverDecidedCells, is_image

# The classes importable from here before the registry existed; a new kind need not be.
from .custom import CustomCells
from .downscale import Downscale
from .observation import ObservationCells
from .text import TextCells

if TYPE_CHECKING:
    from ..envs.base import Explorable

REGISTRY: Registry[type[CellFn]] = Registry("cell kind", CellFn, {
    "downscale": ".downscale:Downscale",
    "dynamic": ".dynamic:DynamicDownscale",
    "ram": "..envs.ale_ram:RamCells",  # domain knowledge: with its game
    "observation": ".observation:ObservationCells",
    "bins": ".bins:AdaptiveBins",  # per-dimension bins, re-chosen (or pinned: bits=...)
    "text": ".text:TextCells",
    "minigrid": "..envs.minigrid:MiniGridCells",
    "novelty": ".novelty:NoveltyCells",
    "learned": ".learned:LearnedCells",  # torch: imported only when chosen
    "dom": ".dom:DomCells",  # web pages: the state of their interactive elements
}, __name__)  # fmt: skip
register = REGISTRY.register
# What --cells accepts besides module:function.
AUTO = "auto"
# What "auto" means for environments without a default of their own, by version (a run keeps
# the version it was made with, ExploreConfig.cells_auto): 1 the observation rounded to one
# decimal (stepstone 0.1), 2 adaptive per-dimension bins where it has float dimensions, 3 as
# 2 and dynamic downscaling where the observation is an image, 4 as 3 and a dict's or tuple's
# pictures downscaled among its parts (cells/bins.py), not kept exact, 5 as 4 and dynamic
# downscaling on Atari too, where it had been fixed 11 x 8 x 8 (envs/ale.py).
AUTO_VERSION = 5


def choices() -> list[str]:
    """The names ``--cells`` accepts (``auto`` and the registered kinds)."""
    return [AUTO, *REGISTRY]


def check(kind: str) -> None:
    """Refuse a ``--cells`` value that names no kind.

    Raises:
        ConfigError: ``kind`` is not ``auto``, a registered kind or ``module:function``.
    """
    if kind != AUTO and kind not in REGISTRY and ":" not in kind:
        raise REGISTRY.unknown(kind, alternatives=f", {AUTO}, or module:function of your own")


def resolve(
    kind: str, params: dict, env: Explorable, version: int = AUTO_VERSION, shards: int = 1
) -> tuple[str, dict]:
    """The cell kind and parameters to use.

    'auto' means the environment's own default (``env.default_cells``: MiniGrid's agent and
    objects; Atari's fixed downscaled frames before ``version`` 5), else (``version`` 3)
    dynamic downscaling when the observation is an image (Go-Explore's cells for frames,
    their shape chosen for the frames the run meets: an exact frame a cell would make one
    cell a step), (``version`` 2) adaptive per-dimension bins when it has float dimensions (a
    Box, or dict/tuple parts that are), (``version`` 4) with picture parts downscaled, shapes
    chosen with the bins, and the observation itself otherwise (a Discrete state, a string).
    ``decimals=N`` keeps the observation rounded to N decimals; ``bits=...`` pins the bins
    (cells/bins.py). A picture in a sharded run (``shards`` > 1) is fixed downscaling: no
    shard sees the whole archive to re-choose a shape against (shards.py).
    """
    if kind != AUTO:
        return kind, params
    default = env.default_cells
    if default is None and version < 5:  # Atari's fixed downscaling, before version 5
        default = getattr(env, "former_default_cells", None)
    if default is not None:
        return default[0], {**default[1], **params}
    if version >= 3 and not {"decimals", "bits"} & set(params) and is_image(env.observe()):
        return ("dynamic" if shards == 1 else "downscale"), params
    if version >= 2 and "decimals" not in params:
        from .bins import dimensions

        obs = env.observe()
        floats, pictures = dimensions(obs, pictures=version >= 4)
        if floats or pictures:
            if version < 4 and dimensions(obs)[1]:  # its pictures were kept exact: they stay
                params = {"pictures": "exact", **params}
            return "bins", params
    return "observation", params


def make(kind: str, env: Any, params: dict | None = None) -> CellFn:
    """The cell function of ``kind`` for ``env``.

    Args:
        kind: a registered kind or ``module:function`` (not ``auto``: ``resolve`` it first).
        env: the adapter the cells are computed on.
        params: the kind's parameters (``--cell-param``).

    Raises:
        ConfigError: an unknown kind, or parameters it does not take.
    """
    params = dict(params or {})
    if ":" in kind and kind not in REGISTRY:
        return CustomCells(kind)
    cls = REGISTRY[kind]
    check_types(cls, params, "--cell-param")
    try:
        return cls.from_env(env, **params)
    except (TypeError, ValueError) as e:
        raise parameter_error(cls, e, f"invalid parameters {params} for {kind} cells: {e}") from e


__all__ = [
    "AUTO_VERSION", "REGISTRY", "AdaptiveCells", "CellFn", "CellRule", "CustomCells", "Downscale",
    "DriverDecidedCells", "ObservationCells", "TextCells", "check", "choices", "is_image", "make",
    "register", "resolve",
]  # fmt: skip
