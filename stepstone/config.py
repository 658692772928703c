"""Run configuration: one frozen dataclass whose defaults reproduce Go-Explore Phase 1.

The run directory stores it; ``resume`` refuses a different one. What may change between a run
and its resumption (frame budget, workers, backend) is deliberately not in here.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from .errors import ConfigError
from .goals import Goal
from .selectors import MODEL_SELECTORS
from .selectors import REGISTRY as SELECTORS

EXPLORERS = ("random", "llm")

CELL_KINDS = (
    "auto", "downscale", "dynamic", "ram", "observation", "text", "minigrid", "novelty", "learned",
    "dom",
)  # fmt: skip


@dataclass(frozen=True)
class ExploreConfig:
    """What defines a run. Defaults: Go-Explore Phase 1 (Ecoffet et al. 2019, sec. 2-3)."""

    env: str
    seed: int = 0
    cells: str = "auto"  # auto: downscale for Atari, observation otherwise; or module:function
    cell_params: dict[str, Any] = field(default_factory=dict)
    selector: str = "count"
    explore_steps: int = 100  # "explore ... for 100 steps" (2019, sec. 2.1)
    repeat_prob: float = 0.95  # "repeat the previous action with 95% probability"
    end_on_life_loss: bool = True  # an exploration ends when a life is lost
    # Cells reached in the last N steps before a life was lost are not kept. Atari games take a
    # life only after the death animation, and cells recorded during it are doomed: on a
    # Montezuma archive, 30% of cells died whatever the agent did, 75% of those within 10
    # steps. Go-Explore's reference code detects the death at once (from the pixels).
    death_window: int = 0
    reset_on_update: bool = False  # zero a cell's counters when its entry improves (engine.py)
    return_method: str = "auto"  # non-Atari: auto, deepcopy or replay (envs/generic.py)
    imports: tuple[str, ...] = ()
    env_args: dict[str, Any] = field(default_factory=dict)  # keywords of gymnasium.make
    batch: int = 100  # explorations per iteration (one metrics row, one commit)
    # A language model in the loop (Intelligent Go-Explore, Language Frontier Guide): the
    # model (part of what defines the run; its URL, key and call budget are run options), the
    # explorer ("llm": the model picks actions), actions per model call, whether the model
    # judges which new cells enter the archive, and prompt templates overriding llm/prompts.py.
    explorer: str = "random"
    llm_model: str | None = None
    llm_actions: int = 1
    llm_samples: int = 4  # distinct replies per state the llm explorer may draw (explorers/llm.py)
    llm_judge: bool = False
    llm_prompts: dict[str, str] = field(default_factory=dict)
    # What success is (goals.py): None for the environment's own goal, else e.g. "score>=200"
    # or "terminated"; and whether the run ends once it is reached.
    goal: str | None = None
    stop_on_success: bool = False

    def __post_init__(self) -> None:
        if self.seed < 0:
            raise ConfigError(f"--seed must be >= 0, got {self.seed}")
        if self.selector not in SELECTORS:
            raise ConfigError(
                f"unknown selector {self.selector!r}; choose one of {', '.join(SELECTORS)}"
            )
        if self.cells not in CELL_KINDS and ":" not in self.cells:
            raise ConfigError(
                f"unknown cell kind {self.cells!r}; choose one of {', '.join(CELL_KINDS)} "
                "or give your own function as module:function"
            )
        if self.explore_steps < 1:
            raise ConfigError(f"explore steps must be >= 1, got {self.explore_steps}")
        if self.death_window < 0:
            raise ConfigError(f"--death-window must be >= 0 steps, got {self.death_window}")
        if not 0.0 <= self.repeat_prob <= 1.0:
            raise ConfigError(f"repeat probability must be in [0, 1], got {self.repeat_prob}")
        if self.batch < 1:
            raise ConfigError(f"batch must be >= 1, got {self.batch}")
        if self.explorer not in EXPLORERS:
            raise ConfigError(
                f"unknown explorer {self.explorer!r}; choose one of {', '.join(EXPLORERS)}"
            )
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
        from .llm.prompts import Prompts

        Prompts(self.llm_prompts)  # unknown roles or fields are refused now, not mid-run

    def model_roles(self) -> list[str]:
        """What asks the model in this run, in words (empty: no model)."""
        roles = []
        if self.selector in MODEL_SELECTORS:
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
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> ExploreConfig:
        data = json.loads(text)
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ConfigError(f"stored configuration has unknown fields {sorted(unknown)}")
        data["imports"] = tuple(data.get("imports", ()))
        return cls(**data)


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
