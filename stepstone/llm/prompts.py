"""The prompts of the model's roles (IGE, LFG), as templates a user can override, and the
parsing of replies.

Each role has one template with named fields (``{goal}``, ``{state}``, ...). A run takes
overrides as a mapping role -> template (``--llm-prompts FILE.json``); an override may use
any subset of its role's fields and no others, which is checked when the run is configured,
not when the first prompt is rendered.

The model reasons before it answers, as in Intelligent Go-Explore (Lu, Hu & Clune 2024;
game_of_24/run.py: ``react_json_instruction`` and ``get_index_from_gpt``, which asks for
``{"thought": X, "choice": Y}`` with ``response_format`` JSON and reads ``choice``), and
only the final answer is read: the ``choice`` of the reply's JSON object, else a marked final
line (``Answer: 3``, or TextWorld's ``Choose > 3`` / ``> go north``,
textworld/run_treasure.py: ``extract_action``), else a reply that is nothing but the answer.
Numbers in the reasoning are never taken for the answer; a reply without a final answer is
the caller's to count as a fallback (``final`` returns None).
"""

from __future__ import annotations

import json
import re
import string
from collections.abc import Mapping
from typing import Any

from ..errors import ConfigError

SYSTEM = (
    "You help an agent explore an environment described in text, in the style of "
    "Go-Explore: an archive keeps the interesting states found; you choose states to return "
    "to, actions to explore with, and which new states to keep. First reason briefly, then "
    'reply exactly with the JSON object {"thought": "your reasoning", "choice": ANSWER}, '
    "where ANSWER is what the question asks for (a number, or a list of numbers)."
)

# Structured output where the server supports it (vLLM, llama.cpp server, Ollama, OpenAI):
# the reply must be the JSON object the system message asks for. A server that refuses the
# field is asked again without it (llm/remote.py).
RESPONSE_FORMAT = {
    "type": "json_schema",
    "json_schema": {
        "name": "answer",
        "schema": {
            "type": "object",
            "properties": {
                "thought": {"type": "string"},
                "choice": {
                    "anyOf": [
                        {"type": "integer"},
                        {"type": "array", "items": {"type": "integer"}},
                    ]
                },
            },
            "required": ["thought", "choice"],
        },
    },
}

DEFAULTS: dict[str, str] = {
    # Intelligent Go-Explore, "select": which archived state to return to.
    "select": (
        "Goal: {goal}\n\n"
        "{feedback}States in the archive, with their score, how often they were explored "
        "from, and the actions already tried there:\n{entries}\n\n"
        "Which state is the most promising to return to and explore further, to reach the "
        "goal or discover something new? Choose a state with actions not yet tried. The "
        "choice is the number of the state (or a list of up to {n} numbers, best first)."
    ),
    # Intelligent Go-Explore, "explore": the next action(s) among the admissible ones.
    "act": (
        "Goal: {goal}\n\n"
        "History:\n{history}\n\n"
        "Current state: {state}\n\n"
        "Possible actions:\n{actions}\n\n"
        "Choose the next action to explore toward the goal. The choice is the number of the "
        "action (or a list of up to {k} numbers, to take in order)."
    ),
    # Intelligent Go-Explore, "archive filter" (game_of_24/run.py: IGE.add_to_archive).
    "judge": (
        "Goal: {goal}\n\n"
        "Current archive:\n{archive}\n\n"
        "New state: {state}\n\n"
        "Is this state interestingly new, and should it be added to the archive? Only reject "
        "it if you are sure it cannot lead to the goal.\n"
        "Choices:\n0. Do not add\n1. Add"
    ),
    # Language Frontier Guide (Shah et al. 2023, section 4): the positive query.
    "score": (
        "Goal: {goal}\n\n"
        "Frontier states:\n{entries}\n\n"
        "Which of these states is the most likely to lead to the goal if explored from? "
        "The choice is its number."
    ),
    # Language Frontier Guide, section 4: the negative query.
    "score_negative": (
        "Goal: {goal}\n\n"
        "Frontier states:\n{entries}\n\n"
        "Which of these states is the least likely to lead to the goal if explored from? "
        "The choice is its number."
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

    def messages(self, role: str, memory: list[dict] | tuple = (), **values: object) -> list[dict]:
        """The chat messages of ``role`` with ``values`` filled in, after the earlier
        exchanges in ``memory`` (llm/memory.py)."""
        return [
            {"role": "system", "content": self.system},
            *memory,
            {"role": "user", "content": self.templates[role].format(**values)},
        ]


def _objects(reply: str) -> list[dict]:
    """The JSON objects in ``reply`` (bare, or inside a fenced code block), in order."""
    decoder, found, i = json.JSONDecoder(), [], reply.find("{")
    while i != -1:
        try:
            value, end = decoder.raw_decode(reply, i)
        except ValueError:
            i = reply.find("{", i + 1)
            continue
        if isinstance(value, dict):
            found.append(value)
        i = reply.find("{", end)
    return found


_MARKED = re.compile(
    r"^\W*(?:final answer|answer|choice|choose|action)\W{0,3}?\s*(?:[:=>]|is)\s*(.+?)\s*$"
    r"|^\s*>\s*(.+?)\s*$",
    re.I | re.M,
)
_BARE = re.compile(r"^\s*\[?\s*(\d+(?:\s*,\s*\d+)*)\s*\]?\s*\.?\s*$")


def final(reply: str) -> Any:
    """The reply's final answer, or None when it gives none: the ``choice`` of its last JSON
    object that has one, else the text of its last marked line (``Answer: 3``,
    ``Choose > 3``, ``> go north``), else the whole reply when it is only numbers."""
    for obj in reversed(_objects(reply)):
        if "choice" in obj:
            return obj["choice"]
    marked = _MARKED.findall(reply)
    if marked:
        a, b = marked[-1]
        return (a or b).strip(" *_`.")
    if _BARE.match(reply):
        return reply.strip()
    return None


def indices(answer: Any, count: int) -> list[int]:
    """0-based indices of the list items (numbered from 1 to ``count``) that ``answer`` names,
    in order, without repeats: an integer, a list of them, or text that starts with them
    ("3", "[2, 5]", "4. 8 / 8 = 1"); items outside the list are dropped."""
    if isinstance(answer, bool):
        return []
    if isinstance(answer, int | float):
        answer = [answer]
    if isinstance(answer, str):
        m = re.match(r"\s*\[?\s*(\d+(?:\s*,\s*\d+)*)(.*)", answer, re.S)
        arithmetic = m is not None and re.match(r"\s*[-+*/=]\s*\d", m.group(2))
        answer = [] if m is None or arithmetic else [int(x) for x in re.findall(r"\d+", m.group(1))]
    picked: list[int] = []
    for x in answer if isinstance(answer, list) else []:
        if isinstance(x, int | float) and not isinstance(x, bool) and x == int(x):
            i = int(x) - 1
            if 0 <= i < count and i not in picked:
                picked.append(i)
    return picked


def verdict(answer: Any) -> bool | None:
    """An archive filter's answer: 1 (add) or 0 (do not add), as IGE asks
    (game_of_24/run.py: ``IGE.add_to_archive``); anything else is None."""
    if isinstance(answer, str):
        word = answer.strip().lower()
        if word in ("1", "add", "yes"):
            return True
        if word in ("0", "do not add", "don't add", "no"):
            return False
        return None
    if isinstance(answer, int | float) and not isinstance(answer, bool) and answer in (0, 1):
        return bool(answer)
    return None


def numbered(items: list[str], width: int = 300) -> str:
    """'1. first\\n2. second', each item cut to ``width`` characters."""
    return "\n".join(f"{i + 1}. {t if len(t) <= width else t[: width - 3] + '...'}"
                     for i, t in enumerate(items))  # fmt: skip


def listing(items: list[str], chars: int, what: str = "states") -> tuple[str, list[int]]:
    """``items`` numbered from 1, the newest (last) that fit in ``chars``: the text, with a
    first line saying how many older ones were left out, and the indices kept."""
    kept: list[int] = []
    size = 0
    for i in range(len(items) - 1, -1, -1):
        size += len(items[i]) + 6
        if size > chars and kept:
            break
        kept.insert(0, i)
    text = numbered([items[i] for i in kept])
    if len(kept) < len(items):
        text = f"({len(items) - len(kept)} older {what} left out to fit the context)\n" + text
    return text, kept
