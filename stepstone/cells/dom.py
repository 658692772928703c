"""Web-page cells: the state of the page's elements (what is checked, chosen, focused, filled,
shown, and the text on the page), never its pixels.

Two pages share a cell when they are at the same URL (``url``) and show the same elements in
the same states, element ids left out: a page may number elements in the order they were
created, which depends on the path taken, not on where the path got. The text shown is part
of the state (``text``): "Order placed" on an otherwise unchanged page is a new place.
"""

from __future__ import annotations

from typing import Any

from ..errors import ConfigError
from .base import CellFn


class DomCells(CellFn):
    def __init__(self, url: bool = True, text: bool = True):
        self.url = url
        self.text = text

    def __call__(self, env: Any) -> tuple:
        from ..envs.browser import BrowserEnv

        if not isinstance(env, BrowserEnv):
            raise ConfigError("dom cells need a web environment (miniwob/TASK-v1 or web:URL)")
        p = env.page()
        keys = tuple(e.key() for e in p.elements if self.text or e.id)
        return (p.url if self.url else "", keys)
