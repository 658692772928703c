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


def test_a_stop_during_a_merge_waits_for_the_merge(tmp_path, monkeypatch):
    """SIGTERM that arrives while a result is being merged stops the run once that merge is
    whole: before, a KeyboardInterrupt raised mid-merge left half of a result's counters
    appended and the run died on a ValueError with nothing more committed."""
    from stepstone.config import ExploreConfig
    from stepstone.engine import Engine
    from stepstone.runner import RunOptions, open_run, run

    merge, started, finished = Engine._merge, [], []

    def merge_and_get_stopped(self, result, counts):
        started.append(1)
        if len(started) == 30:
            os.kill(os.getpid(), signal.SIGTERM)  # handled at the next bytecode: mid-merge
        stats = merge(self, result, counts)
        finished.append(1)
        return stats

    monkeypatch.setattr(Engine, "_merge", merge_and_get_stopped)
    handlers = [signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)]
    store = open_run(ExploreConfig(env="CartPole-v1", explore_steps=20), tmp_path / "run")
    last = run(store, RunOptions(frames=10**7, workers=1, backend="inline", progress=False))
    store.close()
    assert last.get("interrupted")
    assert len(started) == len(finished) == 30  # the merge under way finished, no other began
    store = RunStore.open(tmp_path / "run")
    assert store.metrics()[-1]["frames"] == store.state()["frames"]  # committed to the end
    archive = store.load_archive()
    assert int(archive.times_chosen[: len(archive)].sum()) == 30  # every merged choice counted
    assert [signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)] == handlers  # put back


def test_a_resume_asking_fewer_frames_than_done_says_so_and_keeps_the_budget(tmp_path, capsys):
    """It printed the summary as if it had run, and stored the smaller budget, so that a
    later bare `stepstone resume` did nothing."""
    run = tmp_path / "run"
    args = ["explore", "CartPole-v1", "--frames", "3k", "--workers", "1", "--no-progress"]
    assert main([*args, "--run-dir", str(run)]) == 0
    store = RunStore.open(run)
    done, budget = store.state()["frames"], store.meta("budget")
    store.close()
    capsys.readouterr()
    assert main(["resume", str(run), "--frames", "1k", "--no-progress"]) == 0
    err = capsys.readouterr().err
    assert f"nothing to run: {run} is at {done:,} frames, past --frames 1,000" in err
    store = RunStore.open(run)
    assert store.state()["frames"] == done and store.meta("budget") == budget == "3000"
    store.close()
    # a bare resume of a finished run says the same of its budget
    assert main(["resume", str(run), "--no-progress"]) == 0
    assert "past its budget of 3,000; give a larger --frames" in capsys.readouterr().err
    # so does `explore` again into its directory with fewer frames (it lowered the budget)
    assert main([*args[:3], "1k", *args[4:], "--run-dir", str(run)]) == 0
    assert "past --frames 1,000; give a larger --frames" in capsys.readouterr().err
    store = RunStore.open(run)
    assert store.state()["frames"] == done and store.meta("budget") == "3000"
    store.close()
