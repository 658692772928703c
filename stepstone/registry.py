"""A family's registry: the names a user types (``--selector knapsack``) and what they build.

Each family of extension points (cells, selectors, explorers, executors) keeps one
``Registry`` in its package's ``__init__``; configuration checks, the CLI's choices and help,
and the docs read it, so a new member is one file and one registry line. Built-in members are
given as ``"module:Class"`` and imported on first use, so that one needing an extra (learned
cells need torch, the ray executor ray) costs nothing until it is chosen. A user's own member
is registered by their module (``registry.register("name", Class)``), given with ``--import``.
Not for environments (``envs/``), which Gymnasium's own registry names.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar, overload

from .errors import ConfigError

T = TypeVar("T", bound=type)


class Registry(Generic[T]):
    """Names mapped to the classes of one family, in the order they were registered.

    Args:
        family: what a member is called in messages (``"selector"``, ``"cell kind"``).
        base: the class every member must subclass: its contract (e.g. ``Selector``).
        members: built-in members as ``{name: "module:Class"}``, modules relative to
            ``package``; imported when first looked up.
        package: the package the relative module names are in.
    """

    def __init__(self, family: str, base: type, members: dict[str, str], package: str):
        self.family = family
        self.base = base
        self.package = package
        self._members: dict[str, T | str] = dict(members)

    @overload
    def register(self, name: str) -> Callable[[T], T]: ...

    @overload
    def register(self, name: str, member: T) -> T: ...

    def register(self, name: str, member: T | None = None) -> Any:
        """Add ``member`` under ``name``; without ``member``, a class decorator that does.

        Args:
            name: the name users give on the command line and that run directories store.
            member: a subclass of the family's base class.

        Returns:
            ``member`` (or the decorator), so that registering can decorate the class.

        Raises:
            TypeError: ``member`` is not a subclass of the family's base class.
            ValueError: ``name`` is taken by another member.
        """
        if member is None:
            return lambda cls: self.register(name, cls)
        if not (isinstance(member, type) and issubclass(member, self.base)):
            raise TypeError(
                f"a {self.family} must be a subclass of {self.base.__module__}."
                f"{self.base.__qualname__}, not {member!r}"
            )
        old = self._members.get(name)
        if old is not None and old is not member and self._load(name) is not member:
            raise ValueError(f"the {self.family} name {name!r} is taken; register another name")
        self._members[name] = member
        return member

    def names(self) -> list[str]:
        return list(self._members)

    def __iter__(self) -> Iterator[str]:
        return iter(self._members)

    def __contains__(self, name: object) -> bool:
        return name in self._members

    def __getitem__(self, name: str) -> T:
        """The class registered as ``name``, imported if needed.

        Raises:
            ConfigError: no member has that name (the message lists the names there are).
        """
        if name not in self._members:
            raise self.unknown(name)
        return self._load(name)

    def unknown(self, name: str, alternatives: str = "") -> ConfigError:
        """The one-line error for a name nothing is registered as, listing the choices."""
        return ConfigError(
            f"unknown {self.family} {name!r}; choose one of {', '.join(self._members)}"
            + alternatives
        )

    def _load(self, name: str) -> T:
        member = self._members[name]
        if isinstance(member, str):
            module, _, attr = member.partition(":")
            member = getattr(importlib.import_module(module, self.package), attr)
            self._members[name] = member
        return member  # type: ignore[return-value]
