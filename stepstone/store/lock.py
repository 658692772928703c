"""One writer per run directory: an exclusive ``flock`` on ``D/lock``.

Two runs writing one directory would delete each other's snapshots and interleave metrics. The
lock is the kernel's, so it goes with its process: a run killed with ``kill -9`` leaves a file
but no lock, and the next ``resume`` takes it at once. The file names the holder (pid, host,
start time) so the refusal can say who to wait for. Readers (report, replay, export) take no
lock: SQLite's WAL lets them read the last commit while a run writes.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import time
from pathlib import Path

from ..errors import RunDirError

LOCK_NAME = "lock"


class RunLock:
    """Held from ``acquire`` until ``release`` (or the process ends)."""

    def __init__(self, run_dir: Path):
        self.path = Path(run_dir) / LOCK_NAME
        self.fd: int | None = None

    def acquire(self) -> RunLock:
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            raise RunDirError(
                f"cannot lock {self.path.parent} ({e.strerror}); a run needs a writable "
                "directory: fix its permissions or copy it somewhere writable"
            ) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _describe(_holder(self.path))
            os.close(fd)
            raise RunDirError(
                f"{self.path.parent} is in use by another stepstone run ({holder}); wait for it "
                "to finish or stop it, or choose another --run-dir"
            ) from None
        me = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.time()}
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps(me).encode())
        self.fd = fd
        return self

    def release(self) -> None:
        if self.fd is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(self.fd, 0)
            os.close(self.fd)  # closing drops the flock
            self.fd = None


def writer(run_dir: Path) -> str | None:
    """Who is writing ``run_dir`` now, if another process is (its lock held), else None: a
    report read from a run under way says so, and does not suggest resuming it."""
    path = Path(run_dir) / LOCK_NAME
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        who = _holder(path)
        if (who.get("pid"), who.get("host")) == (os.getpid(), socket.gethostname()):
            return None  # this process (a run's own report at its end)
        return _describe(who)
    finally:
        os.close(fd)  # and the shared lock with it
    return None


def _holder(path: Path) -> dict:
    """What the lock file says of its holder (pid, host, since); {} if unreadable."""
    try:
        who = json.loads(path.read_text() or "{}")
    except (OSError, ValueError):
        return {}
    return who if isinstance(who, dict) else {}


def _describe(who: dict) -> str:
    if "pid" not in who:
        return "holder unknown"
    since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(who.get("since", 0)))
    return f"pid {who['pid']} on host {who.get('host', '?')}, since {since}"
