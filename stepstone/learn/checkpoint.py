"""Torch files of Phase 2 written atomically and read without executing anything.

A file is one ``torch.save`` of a dict: tensors (weights, optimiser moments, RNG states,
snapshots as bytes) and plain values (numbers, strings, lists, dicts). Writing goes to a
temporary file in the same directory, flushed to disk, then renamed over the old one, so a
``kill -9`` at any moment leaves either the previous file or the new one, never half of one.
Reading uses ``torch.load(weights_only=True)``, which rebuilds tensors and plain containers
only: a file a user hands over cannot run code (no pickle of anything else).
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

from ..errors import ConfigError


def save(path: Path, data: dict[str, Any]) -> None:
    """``data`` to ``path`` via a temporary file and a rename."""
    import torch

    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        torch.save(data, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def load(path: Path, what: str = "a file written by stepstone robustify") -> dict[str, Any]:
    """The dict in ``path``; ConfigError naming the fix when it is not such a file."""
    import torch

    try:
        with warnings.catch_warnings():  # torch warns of an odd file before refusing it
            warnings.simplefilter("ignore")
            data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # weights_only refuses anything but tensors, in its own error types
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise ConfigError(f"{path} is not {what} ({first}); run robustify again") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path} is not {what} (not a dict); run robustify again")
    return data


def to_tensor(blob: bytes) -> Any:
    """Bytes (an environment snapshot) as a uint8 tensor, which weights_only can load."""
    import torch

    return torch.frombuffer(bytearray(blob), dtype=torch.uint8).clone()


def to_bytes(tensor: Any) -> bytes:
    return bytes(tensor.numpy().tobytes())
