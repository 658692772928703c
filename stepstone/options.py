"""Command-line options declared once, as dataclass fields, and the argparse parser made from them.

A field made with ``option(...)`` carries its flag, help, parser type and choices; its default is
the field's own, so a dataclass, its command line and ``--help`` cannot disagree. This is the
idea of CleanRL's ``Args`` dataclass (cleanrl/ppo.py, parsed there by tyro), written over
``dataclasses.fields`` without a dependency. Not here: what a command does with its options
(cli.py), or the checks of their values (the dataclasses' ``__post_init__``), but for the
types of NAME=VALUE parameters, checked against what takes them (``check_types``).
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import inspect
import json
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from .errors import ConfigError, UnknownParameter

KEY = "stepstone.option"  # the metadata entry a field's option lives under


# The names of each family, the one place the command line reads them (help text and choices).


def cell_kinds() -> Sequence[str]:
    from . import cells

    return cells.choices()


def selector_names() -> Sequence[str]:
    from . import selectors

    return selectors.choices()


def explorer_names() -> Sequence[str]:
    from . import explorers

    return explorers.REGISTRY.names()


def backend_names() -> Sequence[str]:
    from . import executors

    return executors.REGISTRY.names()


@dataclasses.dataclass(frozen=True)
class Option:
    """How one dataclass field appears on the command line."""

    help: str
    flag: str | None = None  # default: --field-name; "" for a positional argument
    type: Callable[[str], Any] | None = None  # parses the text (default: the default's type)
    names: Callable[[], Sequence[str]] | None = None  # fills "{names}" in the help
    choices: bool = False  # only those names are accepted
    metavar: str | None = None
    repeat: bool = False  # may be given more than once: a list
    convert: Callable[[Any], Any] | None = None  # parsed value -> field value
    shown: str | None = None  # the default in words, where it is None or empty
    required: bool = False


def option(default: Any = dataclasses.MISSING, *, help: str, **how: Any) -> Any:
    """A dataclass field that is also a command-line option (keywords: see ``Option``)."""
    meta = {KEY: Option(help, **how)}
    if isinstance(default, (dict, list)):  # a fresh one each instance
        value = default
        return dataclasses.field(default_factory=lambda: type(value)(value), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def _default(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return None


def _shown(value: Any, opt: Option, flag: str) -> str | None:
    """The default as ``--help`` says it; None where the help text says it already."""
    if "default" in opt.help:
        return None
    if isinstance(value, bool):  # a flag's state: --no-progress is off unless given
        return "on" if value != flag.startswith("--no-") else "off"
    if value is None or value in ({}, (), []):
        return opt.shown or "none"
    return str(value)


def add_options(parser: argparse.ArgumentParser, cls: type, **defaults: Any) -> None:
    """One argument per ``option`` field of ``cls``; ``defaults`` replaces fields' defaults."""
    for f in dataclasses.fields(cls):
        opt = f.metadata.get(KEY)
        if opt is None:
            continue
        default = defaults[f.name] if f.name in defaults else _default(f)
        names = tuple(opt.names()) if opt.names else ()
        text = opt.help.format(names=", ".join(names)) if names else opt.help
        kw: dict[str, Any] = {"help": text}
        if opt.choices:
            kw["choices"] = names
        if opt.metavar:
            kw["metavar"] = opt.metavar
        if opt.flag == "":
            parser.add_argument(f.name, type=opt.type, **kw)
            continue
        flag = opt.flag or "--" + f.name.replace("_", "-")
        shown = None if opt.required else _shown(default, opt, flag)
        if shown is not None:
            kw["help"] = f"{text} (default: {shown})"
        if isinstance(default, bool):
            if flag.startswith("--no-"):
                kw["action"] = "store_false"
            else:
                kw["action"] = argparse.BooleanOptionalAction if default else "store_true"
        elif opt.repeat:
            kw.update(action="append", default=[], type=opt.type)
        else:
            guess = type(default) if isinstance(default, (int, float)) else None
            kw.update(type=opt.type or guess, required=opt.required)
        kw.setdefault("default", default)
        parser.add_argument(flag, dest=f.name, **kw)


def values(cls: type, ns: argparse.Namespace) -> dict[str, Any]:
    """The ``option`` fields of ``cls`` as parsed into ``ns``, converted to the fields' types."""
    out = {}
    for f in dataclasses.fields(cls):
        opt = f.metadata.get(KEY)
        if opt is None or not hasattr(ns, f.name):
            continue
        value = getattr(ns, f.name)
        given = value is not None and value != _default(f)  # as typed, not the field's own
        out[f.name] = opt.convert(value) if opt.convert and given else value
    return out


def build(cls: type, ns: argparse.Namespace, **given: Any) -> Any:
    """An instance of ``cls`` from the parsed options, ``given`` replacing some of them."""
    return cls(**{**values(cls, ns), **given})


def params(option: str, example: str) -> Callable[[list[str]], dict]:
    """A converter of repeated NAME=VALUE texts into a dict; values are JSON where they parse
    (numbers, true), else strings."""

    def parse(items: list[str]) -> dict:
        out = {}
        for item in items:
            name, eq, value = item.partition("=")
            if not eq or not name:
                raise ConfigError(f"{option} takes NAME=VALUE, e.g. {example}, not {item!r}")
            try:
                out[name] = json.loads(value)
            except json.JSONDecodeError:
                out[name] = value
        return out

    return parse


# What a NAME=VALUE's value must be, for a parameter annotated with a plain type.
_TYPES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "int": (lambda v: isinstance(v, int) and not isinstance(v, bool), "an integer"),
    "float": (lambda v: isinstance(v, (int, float)) and not isinstance(v, bool), "a number"),
    "bool": (lambda v: v in (True, False), "true or false"),  # 1 and 0 too
    "str": (lambda v: isinstance(v, str), "text"),
    "None": (lambda v: v is None, "null"),
}


def check_types(target: Callable, given: dict[str, Any], option: str) -> None:
    """Refuse a NAME=VALUE (``--cell-param``, ``--selector-param``, ``--env-arg``) whose
    type is not the one ``target``'s signature declares for its name (``width=abc``,
    ``width=true``), in the option's words: otherwise it fails far from the flag, as a
    comparison or an array shape that names neither (or, true taken for 1, not at all).
    An unannotated name whose default is a number or a bool refuses text (MiniGrid's
    ``size=abc`` was a pow() TypeError); names with other annotations (sequences, Any) or
    none are left to ``target``.

    Raises:
        ConfigError: a value of the wrong type.
    """
    try:
        signature = inspect.signature(target)
    except (TypeError, ValueError):
        return
    for name, value in given.items():
        param = signature.parameters.get(name)
        if param is None:
            continue
        note = param.annotation  # text under `from __future__ import annotations`
        text = note if isinstance(note, str) else getattr(note, "__name__", str(note))
        parts = [t.strip() for t in text.split("|")]
        default = param.default
        if note is param.empty and isinstance(value, str) and isinstance(default, (int, float)):
            parts = ["bool" if isinstance(default, bool) else "float"]  # MiniGrid's size=8
        if not all(t in _TYPES for t in parts):
            continue  # not a plain type (or not annotated)
        if not any(_TYPES[t][0](value) for t in parts):
            words = " or ".join(_TYPES[t][1] for t in parts if t != "None")
            quote = ""
            if "str" in parts and isinstance(value, (int, float)):  # read as JSON: 8 is a number
                quote = f" (as text, quoted: {option} '{name}=\"{value}\"')"
            raise ConfigError(f"{option} {name} takes {words}, not {json.dumps(value)}{quote}")


def parameter_error(target: Callable, error: Exception, message: str) -> ConfigError:
    """``message`` as the error to raise for ``target``'s refusal ``error``: an
    UnknownParameter, with "; did you mean width?" when one of its keyword parameters is close,
    for Python's TypeError naming a keyword it does not take (``wdth``); else a ConfigError."""
    m = re.search(r"unexpected keyword argument '(\w+)'", str(error))
    if not m:
        return ConfigError(message)
    try:
        names = [p.name for p in inspect.signature(target).parameters.values()
                 if p.default is not inspect.Parameter.empty]  # fmt: skip
    except (TypeError, ValueError):
        names = []
    close = difflib.get_close_matches(m.group(1), names, n=1)
    hint = f"; did you mean {close[0]}?" if close else ""
    return UnknownParameter(message + hint, close[0] if close else None)


def prompts_file(path: Path) -> dict[str, str]:
    """--llm-prompts: a JSON file mapping role names to template strings."""
    try:
        data = json.loads(Path(path).read_text())
    except OSError as e:
        raise ConfigError(f"cannot read --llm-prompts {path}: {e.strerror}") from None
    except json.JSONDecodeError as e:
        raise ConfigError(f"--llm-prompts {path} is not JSON ({e})") from None
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        raise ConfigError(f"--llm-prompts {path} must map role names to template strings")
    return data
