"""A user's own cell function, named as ``module:function`` on the command line.

The function receives the current observation and returns anything hashable; its module is
imported in every worker process, so it must be importable there (installed or on PYTHONPATH).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Hashable
from typing import Any

from .. import codec
from ..errors import ConfigError, StepstoneError, said
from .base import CellFn


class CustomCells(CellFn):
    def __init__(self, target: str):
        module, _, attr = target.partition(":")
        if not module or not attr:
            raise ConfigError(f"custom cells must be given as module:function, not {target!r}")
        try:
            self.fn: Callable[[Any], Hashable] = getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError) as e:
            raise ConfigError(f"cannot load cell function {target!r}: {e}") from e
        self.target = target
        self.checked = False

    def __call__(self, env: Any) -> Hashable:
        try:
            cell = self.fn(env.observe())
            hash(cell)
            if not self.checked:  # stored in the run directory as data: refused now, not later
                codec.pack(cell)
                self.checked = True
        except StepstoneError as e:
            raise ConfigError(f"cell function {self.target}: {e}") from None
        except Exception as e:
            raise ConfigError(
                f"cell function {self.target} failed: {said(e)}; it must return "
                "something hashable made of numbers, strings, bytes and tuples"
            ) from None
        return cell
