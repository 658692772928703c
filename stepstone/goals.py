"""What counts as success in a run: the one place that decides whether a state reaches the goal.

In order: the user's ``--goal`` (``score>=200``, ``score>0``, ``terminated``; on a web page,
``text:Order placed``, text the page shows, or ``css:#receipt``, an element it has); else the
environment's own goal, as its adapter answers it (``goal()``: MiniGrid's goal square, Game of
24's 24, Montezuma's first level...); else Gymnasium's convention of ``info["is_success"]``
(set by e.g. the Gymnasium-Robotics Fetch tasks), or ``info["success"]`` (its mazes). Where
none applies the run has no goal, and its success is unknown (``None``), never "no": an
episode that ends, or ends with a reward, is not a success by itself (CartPole and Hopper end
by falling over).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .errors import ConfigError

if TYPE_CHECKING:
    from .envs.base import Explorable

_SCORE = re.compile(r"^score\s*(>=|>)\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)$")
FORMS = "score>=NUMBER, score>NUMBER, terminated, text:TEXT or css:SELECTOR"
_EG = {"text": "'Order placed'", "css": "'#receipt'"}
GOAL_REACHED = "goal reached (--stop-on-success)"  # why a run stopped before its budget


@dataclass(frozen=True)
class Goal:
    """A parsed ``--goal`` (``text`` None: the environment's own goal or ``is_success``)."""

    text: str | None = None
    threshold: float | None = None  # score goals
    strict: bool = False  # score>X rather than score>=X

    @classmethod
    def parse(cls, text: str | None) -> Goal:
        """``None`` -> the environment's goal; else one of FORMS, or a ConfigError."""
        if text is None:
            return cls()
        s = text.strip()
        if s == "terminated":
            return cls("terminated")
        kind, colon, query = s.partition(":")
        if colon and kind in ("text", "css"):
            if not query.strip():
                raise ConfigError(f"--goal {kind}: needs what to look for, e.g. {kind}:{_EG[kind]}")
            return cls(f"{kind}:{query.strip()}")
        m = _SCORE.match(s.replace(" ", ""))
        if m is None:
            raise ConfigError(f"--goal takes {FORMS} (e.g. --goal 'score>=200'), not {text!r}")
        return cls(f"score{m.group(1)}{m.group(2)}", float(m.group(2)), m.group(1) == ">")

    def reached(self, env: Explorable, score: float, terminated: bool) -> bool | None:
        """Whether the state ``env`` is in, reached with return ``score`` (and ``terminated``,
        the last step's flag), is a success; None when no goal applies to it."""
        if self.threshold is not None:
            return score > self.threshold if self.strict else score >= self.threshold
        if self.text == "terminated":
            return bool(terminated)
        if self.text is not None:  # text: or css:, looked for on the page
            from .envs.browser import BrowserEnv

            kind, _, query = self.text.partition(":")
            if not isinstance(env, BrowserEnv):
                raise ConfigError(
                    f"--goal {kind}:... looks at a web page; this environment has none "
                    f"(give --goal 'score>=NUMBER' or 'terminated')"
                )
            return bool(env.contains(kind, query))
        return env.goal()

    def describe(self, known: bool) -> str | None:
        """The goal in words for the report; None when the run has none."""
        if self.text is not None:
            return self.text
        return "the environment's own" if known else None
