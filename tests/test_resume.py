"""A run killed with SIGKILL mid-iteration resumes from its last commit, nothing committed lost."""

from __future__ import annotations

import os
import signal
import subprocess
import time

from runs import cli, committed, iterations, wait_for

from stepstone.archive import better
from stepstone.cli import main
from stepstone.store.sqlite import RunStore


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
    cmd = cli(
        f"explore montezuma --cells ram --frames 50M --workers 2 --run-dir {run_dir} --no-progress"
    )
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: iterations(run_dir) >= 4, 120)
        time.sleep(0.37)  # land somewhere inside an iteration
        workers = children(proc.pid)
        assert len(workers) >= 2
    finally:
        os.kill(proc.pid, signal.SIGKILL)  # the driver only, as a crash or OOM kill would
        proc.wait()
    wait_for(lambda: not any(alive(p) for p in workers), 10)  # no orphaned workers

    before = committed(run_dir)
    store = RunStore.open(run_dir)
    frames_at_kill = store.state()["frames"]
    reopened = store.load_archive()
    assert {c: (e.score, e.length) for c, e in zip(reopened.cells, reopened, strict=True)} == before
    store.close()

    target = frames_at_kill + 40_000
    assert main(f"resume {run_dir} --frames {target} --workers 1 --no-progress".split()) == 0
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


def test_sigterm_commits_what_was_merged_and_says_how_to_resume(tmp_path):
    """A scheduler's stop (SIGTERM) ends the run cleanly: the last merged results committed."""
    run_dir = tmp_path / "run"
    cmd = cli(f"explore montezuma --cells ram --frames 50M --workers 1 --run-dir {run_dir}")
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wait_for(lambda: iterations(run_dir) >= 2, 120)
    proc.send_signal(signal.SIGTERM)
    err = proc.communicate(timeout=60)[1]
    assert proc.returncode == 130  # interrupted, not finished: scripts can tell
    assert f"stepstone resume {run_dir}" in err
    store = RunStore.open(run_dir)
    last = store.metrics()[-1]
    assert last["frames"] == store.state()["frames"]  # the final partial iteration is committed
    assert not store.state().get("pending")
