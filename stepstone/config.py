"""Run configuration: one frozen dataclass whose defaults reproduce Go-Explore Phase 1.

The run directory stores it; ``resume`` refuses a different one. What may change between a run
and its resumption (frame budget, workers, backend) is ``RunOptions``, never stored as part of
it. Both are also the command line's options (options.py).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from . import cells, envs, explorers, selectors
from .cells import AUTO_VERSION
from .envs.browser import ACTIONS_VERSION
from .errors import ConfigError, EnvironmentNotFound
from .goals import Goal
from .options import (
    backend_names,
    cell_kinds,
    explorer_names,
    option,
    params,
    prompts_file,
    selector_names,
)


@dataclass(frozen=True)
class ExploreConfig:
    """What defines a run. Defaults: Go-Explore Phase 1 (Ecoffet et al. 2019, sec. 2-3).

    Each field with an ``option`` is also an option of ``stepstone explore`` (options.py).
    """

    env: str = option(
        flag="", help="a Gymnasium id (ALE/MontezumaRevenge-v5), an alias (montezuma), "
        "miniwob/TASK-v1 or web:URL",
    )  # fmt: skip
    seed: int = option(
        0, help="seeds the environment's reset and the run's choices; every trajectory replays "
        "from it",
    )  # fmt: skip
    cells: str = option(  # auto: the environment's own, else cells.resolve's
        "auto", names=cell_kinds, help="cell kind: {names}, or module:function of your own"
    )
    cell_params: dict[str, Any] = option(
        {}, flag="--cell-param", repeat=True, metavar="NAME=VALUE",
        convert=params("--cell-param", "width=16"),
        help="a parameter of the cell kind, e.g. width=16 or every=20; repeatable",
    )  # fmt: skip
    selector: str = option(  # auto: resolved at once (selectors.default) and stored by name
        "auto", names=selector_names,
        help="one of {names}; auto: clustered where the cells are fixed downscaled frames "
        "(--cells downscale) in one archive, count elsewhere",
    )  # fmt: skip
    selector_params: dict[str, Any] = option(
        {}, flag="--selector-param", repeat=True, metavar="NAME=VALUE",
        convert=params("--selector-param", "threshold=0.05"),
        help="a parameter of the selector, e.g. threshold=0.05 or top=0.5 (clustered); "
        "repeatable",
    )  # fmt: skip
    # None: the environment's (envs.explore_defaults), resolved at once and stored as a number
    explore_steps: int = option(
        None, type=int, shown="100; 10 in browser worlds",
        help="actions taken from a chosen cell in one exploration",
    )  # fmt: skip
    repeat_prob: float = option(
        None, type=float, shown="0.95; 0 in browser worlds",
        help="probability that a random exploration repeats its previous action",
    )  # fmt: skip
    # Go-Explore's reference ends on a death in its domain-knowledge runs (montezuma_env.py)
    # but not in its no-domain-knowledge ones (generic_atari_env.py, end_on_death=False);
    # playing on did no better on Montezuma's Revenge at 10M frames (bench/README.md).
    end_on_life_loss: bool = option(
        True, help="end an exploration when a life is lost (as Go-Explore's domain-knowledge "
        "Phase 1 does)",
    )  # fmt: skip
    # Cells reached in the last N steps before a life was lost are not kept. Atari games take a
    # life only after the death animation, and cells recorded during it are doomed: on a
    # Montezuma archive, 30% of cells died whatever the agent did, 75% of those within 10
    # steps. Go-Explore's reference code detects the death at once (from the pixels).
    death_window: int = option(
        0, help="drop the cells reached in the last N steps before a life is lost (doomed states)"
    )
    reset_on_update: bool = option(  # engine.py
        False, help="zero a cell's visit counts when a better trajectory replaces it (as "
        "Go-Explore's reference Montezuma runs did)",
    )  # fmt: skip
    # A place reached with more collected is another place: Go-Explore's reference keeps the
    # score as a dimension of its domain-knowledge cells (uber-research/go-explore,
    # policy_based/goexplore_py/cell_representations.py, ``LevelKeysRoomXYScore``). Here it
    # joins any cell kind whose key the worker computes (worker.py, ``Worker.key``).
    score_cells: bool = option(
        False, help="tell cells apart by the score they were reached with too (the reward "
        "summed from reset): for sparse rewards, where a score says what was collected",
    )  # fmt: skip
    return_method: str = option(  # envs/generic.py
        "auto", flag="--return", help="non-Atari environments: auto, deepcopy or replay"
    )
    imports: tuple[str, ...] = option(
        (), flag="--import", repeat=True, metavar="MODULE", convert=tuple,
        help="import MODULE first (e.g. one that registers your environment; the current "
        "directory is searched too); repeatable",
    )  # fmt: skip
    env_args: dict[str, Any] = option(
        {}, flag="--env-arg", repeat=True, metavar="NAME=VALUE",
        convert=params("--env-arg", "map_name=8x8"),
        help="a keyword argument of gymnasium.make, e.g. map_name=8x8 or is_slippery=false; "
        "repeatable; kept with the run",
    )  # fmt: skip
    batch: int = 100  # explorations per iteration (one metrics row, one commit)
    # A language model in the loop (Intelligent Go-Explore, Language Frontier Guide): the
    # model (part of what defines the run; its URL, key and call budget are run options), the
    # explorer ("llm": the model picks actions), actions per model call, whether the model
    # judges which new cells enter the archive, and prompt templates overriding llm/prompts.py.
    explorer: str = option(
        "random", names=explorer_names, choices=True,
        help="random: Go-Explore's repeated random actions; llm: a model picks the actions",
    )  # fmt: skip
    llm_model: str | None = option(None, help="the model (default: $STEPSTONE_LLM_MODEL)")
    llm_actions: int = option(1, help="actions the model picks per call")
    llm_samples: int = option(  # explorers/llm.py
        4, help="replies per state the llm explorer draws from (1: temperature 0 only, "
        "cheapest, but every exploration from a cell then repeats)",
    )  # fmt: skip
    llm_judge: bool = option(
        False, help="a model decides whether each new cell is interesting enough to archive (IGE)"
    )
    llm_prompts: dict[str, str] = option(
        {}, type=Path, metavar="FILE.json", convert=prompts_file, shown="llm/prompts.py's",
        help="prompt templates, {role: template}, for roles system, select, act, judge and "
        "score",
    )  # fmt: skip
    # What success is (goals.py): None for the environment's own goal, else e.g. "score>=200"
    # or "terminated"; and whether the run ends once it is reached.
    goal: str | None = option(
        None, help="what success is: score>=NUMBER, score>NUMBER, terminated, or on a web page "
        "text:TEXT or css:SELECTOR (default: the "
        "environment's own goal, or info['is_success'] or info['success'] where it sets it)",
    )  # fmt: skip
    stop_on_success: bool = option(
        False, help="end the run when the goal is first reached, before the frame budget"
    )
    shards: int = option(
        1, help="archive shards, each in its own process with its own store in the run "
        "directory (shards.py): for drivers feeding hundreds of workers; count, seen and "
        "uniform selectors only",
    )  # fmt: skip
    # Self-improving demonstrations (learn/returner.py): return to a cell by running the
    # policy `stepstone robustify` saved, from reset under sticky actions, instead of restoring
    # it. Stored as an absolute path, so resume finds it; refused with shards and Ray workers.
    from_policy: str | None = option(
        None, metavar="POLICY",
        help="return to cells by running this robustified policy (a run directory D after "
        "'stepstone robustify D', or its robustify/policy.pt) from reset, not by restoring "
        "them: a run that goes on where states cannot be restored",
    )  # fmt: skip
    sticky: float = option(
        0.0, help="repeat the previous action with this probability (ALE's sticky actions: "
        "0.25) in returns by --from-policy and in explorations; a repeat holds a whole step "
        "(ALE's holds a frame), so that trajectories keep the actions as taken and replay",
    )  # fmt: skip
    # What --cells auto means for environments without cells of their own (cells.resolve):
    # a run keeps the meaning it was made with; stored runs from before it are version 1.
    # Stored only with --cells auto, where it means something.
    cells_auto: int = AUTO_VERSION
    # The admissible actions of browser worlds (envs/browser.py), kept likewise: stored runs
    # of miniwob/ and web: worlds from before are version 1. Stored only for those worlds.
    web_actions: int = ACTIONS_VERSION

    def __post_init__(self) -> None:
        steps, repeat = envs.explore_defaults(self.env)
        if self.explore_steps is None:
            object.__setattr__(self, "explore_steps", steps)
        if self.repeat_prob is None:
            object.__setattr__(self, "repeat_prob", repeat)
        if self.selector == selectors.AUTO:  # before the environment exists, so: Atari's
            # auto cells were fixed downscaled frames before version 5 (cells.resolve), by its id
            frames = self.cells == "downscale" or (
                self.cells == cells.AUTO
                and self.cells_auto < 5
                and envs.is_atari(envs.ALIASES.get(self.env, self.env))
            )
            object.__setattr__(self, "selector", selectors.default(frames, self.shards))
        if self.seed < 0:
            raise ConfigError(f"--seed must be >= 0, got {self.seed}")
        self._check_names()
        if self.explore_steps < 1:
            raise ConfigError(f"explore steps must be >= 1, got {self.explore_steps}")
        if self.death_window < 0:
            raise ConfigError(f"--death-window must be >= 0 steps, got {self.death_window}")
        if not 0.0 <= self.repeat_prob <= 1.0:
            raise ConfigError(f"repeat probability must be in [0, 1], got {self.repeat_prob}")
        if self.batch < 1:
            raise ConfigError(f"batch must be >= 1, got {self.batch}")
        if self.llm_actions < 1:
            raise ConfigError(f"--llm-actions must be >= 1, got {self.llm_actions}")
        if self.llm_samples < 1:
            raise ConfigError(f"--llm-samples must be >= 1, got {self.llm_samples}")
        if self.uses_model and not self.llm_model:
            raise ConfigError(
                f"{self.model_roles()[0]} asks a language model: give --llm-model NAME and "
                "--llm-url URL (or set STEPSTONE_LLM_MODEL and STEPSTONE_LLM_URL)"
            )
        Goal.parse(self.goal)
        if not 0.0 <= self.sticky < 1.0:
            raise ConfigError(f"--sticky is a probability in [0, 1), not {self.sticky}")
        self._check_shards()
        self._check_from_policy()
        from .llm.prompts import Prompts

        Prompts(self.llm_prompts)  # unknown roles or fields are refused now, not mid-run

    def _check_shards(self) -> None:
        """Refuse what sharding would silently change: a selector or cell kind whose choices
        depend on the whole archive at once (shards.py says why)."""
        if self.shards < 1:
            raise ConfigError(f"--shards must be >= 1, got {self.shards}")
        if self.shards == 1:
            return
        if not selectors.REGISTRY[self.selector].shardable:
            raise ConfigError(
                f"--selector {self.selector} weighs cells against the whole archive, which "
                "shards cannot do honestly; use --selector count or uniform, or drop --shards"
            )
        why = {"dynamic": "re-keys the whole archive", "novelty": "is decided against the "
               "whole archive", "learned": "is decided against the whole archive"}  # fmt: skip
        if self.cells in why or self.llm_judge:
            what = "--llm-judge" if self.llm_judge else f"--cells {self.cells}"
            reason = "judges against the whole archive" if self.llm_judge else why[self.cells]
            raise ConfigError(f"{what} {reason}, which shards cannot do; drop --shards")

    def _check_from_policy(self) -> None:
        """Refuse what a return by the policy cannot do, before a run directory is written."""
        if self.from_policy is None:
            return
        # An absolute path of the policy file (a run directory means its robustify/policy.pt),
        # so resume finds it from any directory.
        path = Path(self.from_policy).expanduser().resolve()
        if (path / "robustify").is_dir():
            path = path / "robustify" / "policy.pt"
        object.__setattr__(self, "from_policy", str(path))
        if self.shards > 1:
            raise ConfigError("--from-policy runs with one archive: drop --shards")
        if self.cells in ("novelty", "learned"):
            raise ConfigError(
                f"--cells {self.cells} are decided in the driver, so a worker running the "
                "policy cannot tell when it reached one; use --from-policy with other cells"
            )

    def _check_names(self) -> None:
        """Refuse a selector, cell kind or explorer no registry knows, after importing the
        user's modules (``--import``), which may register them. A module that cannot be
        imported matters here only when a name needs it: one that registers an environment is
        imported again, and its failure said, where the environment is built (``stepstone
        report`` of a run from another machine needs neither)."""
        missing = None
        if self.imports:
            from .envs import import_modules

            try:
                import_modules(self.imports)
            except EnvironmentNotFound as e:
                missing = e
        try:
            if self.selector not in selectors.REGISTRY:
                raise selectors.REGISTRY.unknown(self.selector)
            selectors.check_params(self.selector, self.selector_params)
            cells.check(self.cells)
            if self.explorer not in explorers.REGISTRY:
                raise explorers.REGISTRY.unknown(self.explorer)
        except ConfigError:
            if missing is not None:
                raise missing from None
            raise

    def model_roles(self) -> list[str]:
        """What asks the model in this run, in words (empty: no model)."""
        roles = []
        if selectors.uses_model(self.selector):
            roles.append(f"the {self.selector} selector")
        if self.explorer == "llm":
            roles.append("the llm explorer")
        if self.llm_judge:
            roles.append("--llm-judge")
        return roles

    @property
    def uses_model(self) -> bool:
        return bool(self.model_roles())

    def to_json(self) -> str:
        data = asdict(self)
        if self.cells != cells.AUTO:
            del data["cells_auto"]
        if not envs.is_browser_world(self.env):
            del data["web_actions"]
        if self.shards == 1:  # run directories without shards stay as they were
            del data["shards"]
        if self.from_policy is None:  # and those without the policy's return
            del data["from_policy"]
        if self.sticky == 0.0:
            del data["sticky"]
        if not self.selector_params:
            del data["selector_params"]
        if not self.score_cells:
            del data["score_cells"]
        return json.dumps(data, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> ExploreConfig:
        data = json.loads(text)
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ConfigError(f"stored configuration has unknown fields {sorted(unknown)}")
        data["imports"] = tuple(data.get("imports", ()))
        if data.get("cells") == cells.AUTO:
            data.setdefault("cells_auto", 1)  # written before auto cells were adaptive
        if envs.is_browser_world(data.get("env", "")):
            data.setdefault("web_actions", 1)  # written before text fields were clickable
        return cls(**data)


@dataclass
class RunOptions:
    """How to run: what may differ between a run and its resumption (``runner.run``).

    Each field with an ``option`` is also an option of ``stepstone explore`` and ``resume``.
    """

    frames: int = option(
        convert=lambda text: parse_count(text, "--frames"), shown="the run's budget",
        help="total frame budget, e.g. 200k or 5M (one frame = one step outside Atari)",
    )  # fmt: skip
    workers: int | None = option(None, type=int, help="worker processes (default: cores)")
    backend: str = option(
        "processes", names=backend_names, choices=True,
        help="where explorations run: inline (this process), processes (one per worker) or ray",
    )  # fmt: skip
    progress: bool = option(True, flag="--no-progress", help="no progress bar or log lines")
    filter: bool = option(
        True, flag="--no-filter",
        help="workers send every cell they found, not only those new or better by their copy "
        "of the archive (the same run, more bytes; for measuring, bench/README.md)",
    )  # fmt: skip
    address: str | None = option(
        None, help="with --backend ray: 'auto' or HOST:PORT of a running cluster (default: local)"
    )
    tasks_per_call: int | None = option(
        None, type=int, shown="from the workers' pace: 1 for a few, up to 1 s of work for many",
        help="with --backend ray: tasks sent to a worker in one call; a call costs the driver "
        "as much as merging twenty results (bench/README.md)",
    )  # fmt: skip
    llm: Any = None  # llm.settings.Settings: where the model is, its call budget (model runs)
    deterministic: bool = option(
        False, help="merge results in task order, so a seed reproduces the run byte for byte "
        "at any --workers (without it, only --workers 1 does); costs some throughput "
        "(bench/README.md)",
    )  # fmt: skip
    trust_run_dir: bool = option(
        False, help="allow resuming a run whose snapshots are pickles (--return deepcopy): "
        "restoring them runs code from the run directory, so only for directories you trust",
    )  # fmt: skip

    def __post_init__(self) -> None:
        check_tasks_per_call(self.tasks_per_call)
        if self.tasks_per_call is not None:  # refused now, before a run directory is written
            from .executors import REGISTRY
            from .executors.inline import refuse_remote

            if REGISTRY[self.backend].local:
                refuse_remote(None, self.tasks_per_call)


def check_backend(config: ExploreConfig, options: RunOptions) -> None:
    """Refuse, before anything is written, a backend whose workers may not find the policy
    file ``--from-policy`` names (Ray's run on other machines), or a cluster address that
    nothing answers at."""
    from .executors import REGISTRY
    from .executors.ray import check_reachable

    if options.backend == "ray" and options.address is not None:
        check_reachable(options.address)

    if config.from_policy is not None and not REGISTRY[options.backend].local:
        raise ConfigError(
            f"--from-policy reads {config.from_policy} in every worker, which --backend "
            f"{options.backend} may run on machines without it; use --backend processes or inline"
        )


MAX_PER_CALL = 64  # tasks in one Ray call at most: each carries a snapshot (executors/ray.py)


def check_tasks_per_call(n: int | None) -> None:
    if n is not None and not 1 <= n <= MAX_PER_CALL:
        raise ConfigError(f"--tasks-per-call must be between 1 and {MAX_PER_CALL}, got {n}")


# A trillion frames is about a century of one Atari emulator: a larger count is a typo.
MAX_COUNT = 10**12


def parse_count(text: str | int, what: str = "frames") -> int:
    """'5M' -> 5_000_000, '200k' -> 200_000, '1.5M' -> 1_500_000; negative, junk, infinite
    or absurdly large counts are refused."""
    if isinstance(text, int):
        value = text
    else:
        s = text.strip().lower().replace("_", "")
        mult = {"k": 10**3, "m": 10**6, "g": 10**9, "b": 10**9}.get(s[-1:], 1)
        num = s[:-1] if mult != 1 else s
        try:
            number = float(num) * mult
            value = int(number)
        except (ValueError, OverflowError):  # junk, 'inf', 'nan'
            raise ConfigError(
                f"{what} must be a count like 200000, 200k or 5M, not {text!r}"
            ) from None
    if value < 0:
        raise ConfigError(f"{what} must not be negative, got {text}")
    if value > MAX_COUNT:
        raise ConfigError(f"{what} {text} is more than {MAX_COUNT:.0e}; give a count up to 1000G")
    return value
