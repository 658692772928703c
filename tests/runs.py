"""Helpers for tests that watch a run directory from outside the run's process."""

from __future__ import annotations

import signal
import sqlite3
import sys
import time
from pathlib import Path

from stepstone.store.sqlite import decode_cell


def cli(args: str) -> list[str]:
    """The command line of `stepstone ARGS` run as a separate process."""
    return [sys.executable, "-m", "stepstone.cli", *args.split()]


def ctrl_c_default() -> None:
    """``preexec_fn`` for a run that a test interrupts with SIGINT: a suite started in the
    background (``make test &``, a CI step without a terminal) inherits SIGINT ignored, and an
    ignored signal stays ignored across exec, so the run would never see the Ctrl-C."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def iterations(run_dir: Path) -> int:
    """Iterations committed so far (0 before the database exists)."""
    try:
        with sqlite3.connect(run_dir / "run.sqlite") as db:
            return db.execute("SELECT COUNT(*) FROM metrics").fetchone()[0]
    except sqlite3.Error:
        return 0


def committed(run_dir: Path) -> dict:
    """cell -> (score, length) as committed, read through a separate SQLite connection."""
    with sqlite3.connect(run_dir / "run.sqlite") as db:
        rows = db.execute("SELECT cell, score, length FROM entries").fetchall()
    return {decode_cell(c): (s, n) for c, s, n in rows}


def wait_for(condition, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert condition(), f"timed out after {seconds}s"
