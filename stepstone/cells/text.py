"""Cells from text observations: the whole text, or the part a regular expression picks out.

For text games the useful cell is usually one field of the observation (the room and
inventory, the numbers left), not the whole text with its history; ``pattern``'s first group
selects that field. Whitespace is normalised so that layout differences do not split cells.
"""

from __future__ import annotations

import re
from typing import Any

from ..errors import ConfigError
from .base import CellFn


class TextCells(CellFn):
    def __init__(self, pattern: str | None = None):
        try:
            self._re = re.compile(pattern) if pattern else None
        except re.error as e:
            raise ConfigError(f"invalid text-cell pattern {pattern!r}: {e}") from e

    def __call__(self, env: Any) -> str:
        text = str(env.observe())
        if self._re is not None:
            m = self._re.search(text)
            if m:
                text = m.group(1) if m.groups() else m.group(0)
        return " ".join(text.split())
