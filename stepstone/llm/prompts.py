"""The prompts of the model's roles (IGE, LFG), as templates a user can override, and the
parsing of replies.

Each role has one template with named fields (``{goal}``, ``{state}``, ...). A run takes
overrides as a mapping role -> template (``--llm-prompts FILE.json``); an override may use
any subset of its role's fields and no others, which is checked when the run is configured,
not when the first prompt is rendered. Replies are read leniently (the first numbers, a yes
or a no anywhere), because small models seldom answer in the exact format asked; a reply that
still says nothing usable is the caller's to count as a fallback.
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping

from ..errors import ConfigError

SYSTEM = (
    "You help an agent explore an environment described in text. Answer briefly, in the "
    "format asked, without explanations."
)

DEFAULTS: dict[str, str] = {
    # Intelligent Go-Explore, "select": which archived state to return to.
    "select": (
        "Goal: {goal}\n\n"
        "States found so far, with their score and how often they were explored from:\n"
        "{entries}\n\n"
        "Which state is the most promising to return to and explore further, to reach the "
        "goal or discover something new? Answer with up to {n} numbers from the list, best "
        "first, separated by commas."
    ),
    # Intelligent Go-Explore, "explore": the next action(s) among the admissible ones.
    "act": (
        "Goal: {goal}\n\n"
        "Current state: {state}\n"
        "Actions taken since returning here: {history}\n\n"
        "Possible actions:\n{actions}\n\n"
        "Choose the next action to explore toward the goal. Answer with the number of the "
        "action (or up to {k} numbers, to take in order), separated by commas."
    ),
    # Intelligent Go-Explore, "archive filter": is a newly reached state worth keeping?
    "judge": (
        "Goal: {goal}\n\n"
        "States already in the archive:\n{archive}\n\n"
        "Newly reached state: {state}\n\n"
        "Is the new state interestingly different from those in the archive, so that it is "
        "worth remembering as a starting point for exploration? Answer yes or no."
    ),
    # Language Frontier Guide: how likely each frontier state leads to the goal.
    "score": (
        "Goal: {goal}\n\n"
        "Frontier states:\n{entries}\n\n"
        "For each state, how likely is it that exploring from it leads to the goal? Answer "
        "one line per state as NUMBER: SCORE, with SCORE from 0 (hopeless) to 10 (certain)."
    ),
}


def _fields(template: str) -> set[str]:
    try:
        return {name for _, name, _, _ in string.Formatter().parse(template) if name}
    except ValueError as e:
        raise ConfigError(f"prompt template {template[:40]!r}... is not valid: {e}") from e


class Prompts:
    """The templates of a run: the defaults, with the user's overrides checked and applied."""

    def __init__(self, overrides: Mapping[str, str] | None = None):
        self.templates = dict(DEFAULTS)
        self.system = SYSTEM
        for role, template in (overrides or {}).items():
            if role == "system":
                self.system = str(template)
                continue
            if role not in DEFAULTS:
                raise ConfigError(
                    f"unknown prompt {role!r} in --llm-prompts; the roles are "
                    f"{', '.join(['system', *DEFAULTS])}"
                )
            extra = _fields(str(template)) - _fields(DEFAULTS[role])
            if extra:
                raise ConfigError(
                    f"the {role!r} prompt uses {{{'}, {'.join(sorted(extra))}}}, which it is "
                    f"not given; it may use {', '.join(sorted(_fields(DEFAULTS[role])))}"
                )
            self.templates[role] = str(template)

    def messages(self, role: str, **values: object) -> list[dict]:
        """The chat messages of ``role`` with ``values`` filled in."""
        return [
            {"role": "system", "content": self.system},
            {"role": "user", "content": self.templates[role].format(**values)},
        ]


_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")


def numbers(reply: str) -> list[float]:
    """The numbers in ``reply``, in order."""
    return [float(x) for x in _NUMBER.findall(reply)]


def choices(reply: str, count: int) -> list[int]:
    """0-based indices of the list items (numbered from 1 to ``count``) the reply names,
    in order, without repeats; numbers outside the list are ignored."""
    picked: list[int] = []
    for x in numbers(reply):
        i = int(x) - 1
        if x == int(x) and 0 <= i < count and i not in picked:
            picked.append(i)
    return picked


def yes_no(reply: str) -> bool | None:
    """True for a yes, False for a no (the first one said), None when it says neither."""
    m = re.search(r"\b(yes|no|true|false|interesting|boring)\b", reply.lower())
    if m is None:
        return None
    return m.group(1) in ("yes", "true", "interesting")


def scores(reply: str, count: int, top: float = 10.0) -> dict[int, float]:
    """0-based item -> score in [0, 1] from lines like ``3: 7``; items not named are missing."""
    out: dict[int, float] = {}
    for line in reply.splitlines():
        m = re.match(r"\W*(\d+)\s*[:=).\-]\s*(-?\d+(?:\.\d+)?)", line)
        if m:
            i = int(m.group(1)) - 1
            if 0 <= i < count and i not in out:
                out[i] = min(max(float(m.group(2)) / top, 0.0), 1.0)
    return out


def numbered(items: list[str], width: int = 300) -> str:
    """'1. first\\n2. second', each item cut to ``width`` characters."""
    return "\n".join(f"{i + 1}. {t if len(t) <= width else t[: width - 3] + '...'}"
                     for i, t in enumerate(items))  # fmt: skip
