"""A run killed with SIGKILL mid-iteration resumes from its last commit, nothing committed lost."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time

from stepstone.archive import better
from stepstone.cli import main
from stepstone.store.sqlite import RunStore, decode_cell


def committed(run_dir) -> dict:
    """cell -> (score, length) as committed, read through a separate SQLite connection."""
    db = sqlite3.connect(run_dir / "run.sqlite")
    rows = db.execute("SELECT cell, score, length FROM entries").fetchall()
    db.close()
    return {decode_cell(c): (s, n) for c, s, n in rows}


def iterations(run_dir) -> int:
    try:
        db = sqlite3.connect(run_dir / "run.sqlite")
        n = db.execute("SELECT COUNT(*) FROM metrics").fetchone()[0]
        db.close()
        return n
    except sqlite3.Error:
        return 0


def children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"  # a zombie has exited
    except FileNotFoundError:
        return False


def test_sigkill_mid_iteration_then_resume(tmp_path, capsys):
    run_dir = tmp_path / "run"
    cmd = [
        sys.executable,
        "-m",
        "stepstone.cli",
        "explore",
        "montezuma",
        "--cells",
        "ram",
        "--frames",
        "50M",
        "--workers",
        "2",
        "--run-dir",
        str(run_dir),
        "--no-progress",
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while iterations(run_dir) < 4 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert iterations(run_dir) >= 4, "the run did not commit iterations in time"
        time.sleep(0.37)  # land somewhere inside an iteration
        workers = children(proc.pid)
        assert len(workers) >= 2
    finally:
        os.kill(proc.pid, signal.SIGKILL)  # the driver only, as a crash or OOM kill would
        proc.wait()
    deadline = time.monotonic() + 10
    while any(alive(p) for p in workers) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not any(alive(p) for p in workers), "worker processes outlived their driver"

    before = committed(run_dir)
    store = RunStore.open(run_dir)
    frames_at_kill = store.state()["frames"]
    reopened = store.load_archive()
    assert {c: (e.score, e.length) for c, e in zip(reopened.cells, reopened, strict=True)} == before
    store.close()

    target = frames_at_kill + 40_000
    assert (
        main(["resume", str(run_dir), "--frames", str(target), "--workers", "1", "--no-progress"])
        == 0
    )
    after = RunStore.open(run_dir)
    assert after.state()["frames"] >= target
    archive = after.load_archive()
    for cell, (score, length) in before.items():
        e = archive.get(cell)
        assert e is not None, f"committed cell {cell} lost"
        assert (e.score, e.length) == (score, length) or better(e.score, e.length, score, length)
    # Metrics continue from the last committed iteration, without a gap or a repeat.
    its = [m["iteration"] for m in after.metrics()]
    assert its == list(range(1, len(its) + 1))
    assert main(["replay", str(run_dir), "--cell", "all"]) == 0
