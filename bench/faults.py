"""Faults against a real run: nothing committed may be lost, every entry must replay.

1. Whole-run kills: ``explore``/``resume`` killed with SIGKILL (its whole process group) at a
   random moment, then resumed, N times. After each kill the committed archive is read from
   outside; after the resume every committed cell must still be there with at least its score.
2. Single-worker kills: one ``--workers 2`` run whose worker processes are killed with SIGKILL
   at random moments, N times; the run must finish its budget and count the replacements.
3. Injected commit failures: the run's database connection fails a commit at random (as a full
   disk or an I/O error does), N times; each failure stops the run, which is then resumed.
4. Throughput of the commit path and of ``--deterministic``: the same ``explore`` command with
   this code and with the code of ``--baseline REF`` (a git worktree), and this code with
   ``--deterministic``, alternating in rounds so machine noise hits all alike.

At the end every entry of each run directory is replayed from its seed (``replay.check``).

    python bench/faults.py [--kills 20] [--worker-kills 20] [--commit-failures 20]
                           [--baseline e833434] [--rounds 3] [--seconds 30]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

STEPSTONE = [sys.executable, "-m", "stepstone.cli"]
RUN = ["montezuma", "--cells", "ram", "--no-progress"]


def committed(run: Path) -> dict:
    """cell -> score as committed, read through a separate connection."""
    from stepstone.store.sqlite import decode_cell

    try:
        with sqlite3.connect(run / "run.sqlite") as db:
            rows = db.execute("SELECT cell, score FROM entries").fetchall()
    except sqlite3.Error:
        return {}
    return {decode_cell(c): s for c, s in rows}


def lost(before: dict, after: dict) -> int:
    """Cells committed before that are gone, or hold less score, after."""
    return sum(1 for c, s in before.items() if c not in after or after[c] < s)


def replay_failures(run: Path) -> tuple[int, int]:
    """(entries replayed, entries that did not reach their cell and score)."""
    from stepstone.replay import check
    from stepstone.store.sqlite import RunStore
    from stepstone.trajectories import TrajectoryTree
    from stepstone.worker import Worker

    store = RunStore.open(run)
    archive = store.load_archive()
    worker = Worker.from_config(store.config)
    results = list(check(worker, store.config.seed, TrajectoryTree(store.nodes), archive))
    worker.close()
    store.close()
    return len(results), sum(not r.ok for r in results)


def whole_run_kills(root: Path, n: int, rng: random.Random) -> dict:
    run = root / "kills"
    lost_cells = 0
    for k in range(n):
        cmd = ["explore", *RUN, "--run-dir", str(run)] if k == 0 else ["resume", str(run)]
        proc = subprocess.Popen(
            [*STEPSTONE, *cmd, "--frames", "50M", "--workers", "2"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
        time.sleep(rng.uniform(3.0, 9.0))
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        before = committed(run)
        frames = _frames(run)
        resume = ["resume", str(run), "--frames", str(frames + 2000), "--workers", "1"]
        subprocess.run([*STEPSTONE, *resume, "--no-progress"], check=True, capture_output=True)
        lost_cells += lost(before, committed(run))
    return {"kills": n, "cells_lost": lost_cells, "cells": len(committed(run)), "run": run}


def worker_kills(root: Path, n: int, rng: random.Random) -> dict:
    run = root / "worker-kills"
    proc = subprocess.Popen(
        [*STEPSTONE, "explore", *RUN, "--frames", "50M", "--workers", "2", "--run-dir", str(run)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    killed = 0
    while killed < n and proc.poll() is None:
        time.sleep(rng.uniform(0.5, 3.0))
        workers = subprocess.run(["pgrep", "-P", str(proc.pid), "-f", "spawn_main"],
                                 capture_output=True, text=True).stdout.split()  # fmt: skip
        if workers:
            os.kill(int(rng.choice(workers)), signal.SIGKILL)
            killed += 1
    before = committed(run)
    proc.send_signal(signal.SIGINT)  # end it the ordinary way: what was merged is committed
    err = proc.communicate(timeout=120)[1]
    from stepstone.store.sqlite import RunStore

    last = RunStore.open(run).metrics()[-1]
    return {
        "kills": killed,
        "exit": proc.returncode,  # 130: interrupted by us, as intended; anything else failed
        "error": err.strip().splitlines()[-1] if proc.returncode != 130 else "",
        "replaced": last.get("workers_replaced"),
        "reissued": last.get("reissued"),
        "cells_lost": lost(before, committed(run)),
        "run": run,
    }


def commit_failures(root: Path, n: int, rng: random.Random) -> dict:
    """Each session's database fails one commit at random; the run stops; the next resumes."""
    from stepstone.config import ExploreConfig
    from stepstone.errors import CommitFailed
    from stepstone.runner import RunOptions, open_run, run

    path = root / "commit-failures"
    config = ExploreConfig(env="montezuma", cells="ram")
    failures = lost_cells = 0
    frames = 0
    for _ in range(n):
        store = open_run(config, path)
        before = committed(path)
        countdown = [rng.randint(1, 6)]

        def flaky(_real=store.nodes.flush, _left=countdown):
            """Fails inside the transaction, after the snapshot rows went in: it rolls back."""
            _left[0] -= 1
            if _left[0] == 0:
                raise sqlite3.OperationalError("database or disk is full")
            return _real()

        store.nodes.flush = flaky
        frames += 60_000
        try:
            run(store, RunOptions(frames, workers=2, progress=False))
        except CommitFailed:
            failures += 1
        store.close()
        lost_cells += lost(before, committed(path))
    return {"injected": failures, "cells_lost": lost_cells, "run": path}


def throughput(root: Path, baseline: str, rounds: int, seconds: float) -> dict:
    """frames/s of one explore command under each code version, alternating."""
    here = Path(__file__).resolve().parents[1]
    base = root / "baseline-src"
    subprocess.run(["git", "-C", str(here), "worktree", "add", "--detach", str(base), baseline],
                   check=True, capture_output=True)  # fmt: skip
    variants = {
        "baseline": (base, []),
        "this": (here, []),
        "deterministic": (here, ["--deterministic"]),
    }
    fps: dict[str, list[float]] = {k: [] for k in variants}
    try:
        for r in range(rounds):
            for name, (src, extra) in variants.items():
                run = root / f"tp-{name}-{r}"
                env = {**os.environ, "PYTHONPATH": str(src)}
                proc = subprocess.Popen(
                    [*STEPSTONE, "explore", *RUN, "--frames", "1G", "--workers", "2",
                     "--run-dir", str(run), *extra],
                    env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                )  # fmt: skip
                time.sleep(seconds)
                proc.send_signal(signal.SIGINT)
                proc.wait(timeout=120)
                with sqlite3.connect(run / "run.sqlite") as db:
                    rows = db.execute("SELECT data FROM metrics ORDER BY iteration").fetchall()
                import json

                m = [json.loads(x[0]) for x in rows]
                first, last = m[0], m[-1]  # from the first commit on: start-up excluded
                fps[name].append(
                    (last["frames"] - first["frames"]) / (last["seconds"] - first["seconds"])
                )
    finally:
        subprocess.run(["git", "-C", str(here), "worktree", "remove", "--force", str(base)],
                       capture_output=True)  # fmt: skip
    med = {k: statistics.median(v) for k, v in fps.items()}
    return {"fps": med, "all": fps}


def _frames(run: Path) -> int:
    with sqlite3.connect(run / "run.sqlite") as db:
        row = db.execute("SELECT value FROM meta WHERE key = 'engine'").fetchone()
    return json.loads(row[0])["frames"] if row else 0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--kills", type=int, default=20)
    p.add_argument("--worker-kills", type=int, default=20)
    p.add_argument("--commit-failures", type=int, default=20)
    p.add_argument("--baseline", default=None, help="git ref of the code to compare against")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--seconds", type=float, default=30.0)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        rows = []
        if args.kills:
            r = whole_run_kills(root, args.kills, rng)
            rows.append(("whole-run SIGKILLs", r["kills"], r["cells_lost"], r["run"]))
        if args.worker_kills:
            r = worker_kills(root, args.worker_kills, rng)
            print(f"worker kills: replaced {r['replaced']}, reissued {r['reissued']}, "
                  f"exit {r['exit']} {r['error']}")  # fmt: skip
            rows.append(("single-worker SIGKILLs", r["kills"], r["cells_lost"], r["run"]))
        if args.commit_failures:
            r = commit_failures(root, args.commit_failures, rng)
            rows.append(("injected commit failures", r["injected"], r["cells_lost"], r["run"]))
        print(f"{'fault':<26} {'count':>6} {'cells lost':>11} {'entries':>8} {'replay fails':>13}")
        for name, count, cells_lost, run in rows:
            replayed, failed = replay_failures(run)
            print(f"{name:<26} {count:>6} {cells_lost:>11} {replayed:>8} {failed:>13}")
        if args.baseline:
            t = throughput(root, args.baseline, args.rounds, args.seconds)
            f = t["fps"]
            print(f"frames/s (median of {args.rounds} rounds of {args.seconds:g} s, 2 workers): "
                  f"baseline {f['baseline']:,.0f}, this {f['this']:,.0f} "
                  f"({f['this'] / f['baseline']:.3f}x), --deterministic {f['deterministic']:,.0f} "
                  f"({f['deterministic'] / f['this']:.3f}x of this)")  # fmt: skip
            print("per round:", {k: [round(x) for x in v] for k, v in t["all"].items()})


if __name__ == "__main__":
    main()
