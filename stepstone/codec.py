"""A data-only encoding for what the run directory keeps: cells, actions, snapshot fields.

Run directories are shared (copied from a cluster, attached to a bug report, shipped with a
dataset), so reading one must never run code from it, as ``pickle.loads`` would. This encoding
is JSON with three typed wrappers, and decoding builds nothing but plain values:

* a bytes value on its own is stored raw after a NUL byte (see ``pack``);
* a tuple is a JSON array (lists are not hashable, so cells never hold one; a list becomes a
  tuple too), ``{"b": base64}`` is ``bytes``, ``{"s": [...]}`` a ``frozenset``;
* ``{"a": [dtype, shape, base64]}`` is a numpy array (a numeric dtype only) and numpy scalars
  become Python numbers, which hash and compare equal to them;
* a dict with string keys is ``{"d": {...}}``.

``pack`` refuses anything else with :class:`Unencodable`, naming the type, so a user's cell
function that returns an object is told what to return instead.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import numpy as np

from .errors import StepstoneError


class Unencodable(StepstoneError):
    """A value holds a type the run directory cannot store as data."""


def _to_json(value: Any) -> Any:
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, np.generic) and value.dtype.kind in "biuf":
        return value.item()
    if isinstance(value, (tuple, list)):
        return [_to_json(v) for v in value]
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {"b": base64.b64encode(bytes(value)).decode("ascii")}
    if isinstance(value, frozenset):
        items = [_to_json(v) for v in value]
        return {"s": sorted(items, key=lambda v: json.dumps(v, sort_keys=True))}
    if isinstance(value, np.ndarray) and value.dtype.kind in "biuf":
        data = base64.b64encode(np.ascontiguousarray(value).tobytes()).decode("ascii")
        return {"a": [value.dtype.str, list(value.shape), data]}
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return {"d": {k: _to_json(v) for k, v in value.items()}}
    raise Unencodable(
        f"cannot store a value of type {type(value).__name__} in the run directory; cells and "
        "actions must be built from numbers, strings, bytes, tuples and numeric numpy arrays"
    )


def _from_json(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_from_json(v) for v in value)
    if isinstance(value, dict):
        if len(value) != 1:
            raise ValueError("an encoded object has exactly one key")
        ((tag, body),) = value.items()
        if tag == "b":
            return base64.b64decode(body, validate=True)
        if tag == "s":
            return frozenset(_from_json(v) for v in body)
        if tag == "a":
            dtype, shape, data = body
            dt = np.dtype(dtype)
            if dt.kind not in "biuf":
                raise ValueError(f"array dtype {dtype!r} is not numeric")
            raw = base64.b64decode(data, validate=True)
            return np.frombuffer(raw, dtype=dt).reshape(shape).copy()
        if tag == "d":
            return {k: _from_json(v) for k, v in body.items()}
        raise ValueError(f"unknown tag {tag!r}")
    return value


RAW = b"\x00"  # JSON text never starts with NUL: what follows is a bytes value, as is


def pack(value: Any) -> bytes:
    """``value`` as UTF-8 JSON bytes; the same value always gives the same bytes. A bytes value
    (a downscaled frame: the commonest cell) is stored raw behind a NUL, which reads back an
    order of magnitude faster than its JSON form: a million cells reload in seconds."""
    if type(value) is bytes:
        return RAW + value
    return json.dumps(_to_json(value), separators=(",", ":"), allow_nan=True).encode()


def unpack(blob: bytes) -> Any:
    """The value ``pack`` wrote; raises ``ValueError`` on anything that is not such data."""
    if blob[:1] == RAW:
        return bytes(blob[1:])
    return _from_json(json.loads(blob))
