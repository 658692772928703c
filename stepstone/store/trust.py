"""Who wrote a pickled snapshot: a signature with a key that never leaves this account.

Snapshots of environments returned to by ``--return deepcopy`` are pickles, and restoring one
runs whatever code it holds. A run directory you wrote yourself is safe to resume; one that
came from elsewhere (a bug report, a download) is not. The store signs each pickled snapshot
with HMAC-SHA256 under a key kept in ``~/.config/stepstone/key`` (made on first use, readable
only by its owner), and restores one only if its signature checks out, or if the user says
``--trust-run-dir`` (which then signs the directory's snapshots as their own).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

TAG = 32  # bytes of an HMAC-SHA256


def key_path() -> Path:
    return Path.home() / ".config" / "stepstone" / "key"


def local_key() -> bytes | None:
    """This account's signing key, made on first use; None where it cannot be kept."""
    path = key_path()
    try:
        return path.read_bytes()
    except FileNotFoundError:
        pass
    except OSError:
        return None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process made it meanwhile
        return path.read_bytes()
    except OSError:
        return None
    key = secrets.token_bytes(32)
    with os.fdopen(fd, "wb") as f:
        f.write(key)
    return key


def sign(key: bytes | None, data: bytes) -> bytes:
    """The tag of ``data`` (zeros without a key: it then never verifies)."""
    if key is None:
        return bytes(TAG)
    return hmac.new(key, data, hashlib.sha256).digest()


def verify(key: bytes | None, data: bytes, tag: bytes) -> bool:
    return key is not None and hmac.compare_digest(sign(key, data), tag)
