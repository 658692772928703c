"""Ray backend vs the local process pool, the driver's cost per result, and a fault run.

1. Frames/s of Ray actors vs the process pool at the same worker count, in alternating rounds
   on one engine (so both see the same archive), median of rounds.
2. The driver's CPU time per merged result and the bytes per task and result, the inputs of
   a projection of how many workers one driver can feed.
3. Faults: the Ray run again while one worker process is killed (SIGKILL) every --kill-every
   seconds: frames/s against the undisturbed rounds, tasks re-issued, results merged twice
   (must be 0), archive cells lost or made worse (must be 0).

    python bench/scaling.py [--workers 2] [--rounds 3] [--seconds 15] [--kill-every 5]
"""

from __future__ import annotations

import argparse
import functools
import os
import random
import signal
import statistics
import threading
import time

from common import pump

from stepstone.archive import Archive, better
from stepstone.config import ExploreConfig
from stepstone.engine import Engine
from stepstone.executors.base import dumps
from stepstone.executors.processes import ProcessExecutor
from stepstone.executors.ray import RayExecutor
from stepstone.selectors import CountBased
from stepstone.trajectories import TrajectoryTree
from stepstone.worker import Worker


def snapshot(archive: Archive) -> dict:
    return {c: (archive.score[i], archive.length[i]) for c, i in archive.index.items()}


def lost(before: dict, archive: Archive) -> int:
    """Cells of ``before`` that are missing now or held a better entry than now."""
    n = 0
    for cell, (score, length) in before.items():
        e = archive.get(cell)
        if e is None or (
            (e.score, e.length) != (score, length) and not better(e.score, e.length, score, length)
        ):
            n += 1
    return n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=15.0)
    ap.add_argument("--kill-every", type=float, default=5.0)
    args = ap.parse_args()

    config = ExploreConfig(env="ALE/MontezumaRevenge-v5", cells="ram")
    factory = functools.partial(Worker.from_config, config)
    engine = Engine(Archive(), TrajectoryTree(), CountBased())
    engine.add_root(factory().root())
    pool = ProcessExecutor(factory, args.workers)
    ray_ex = RayExecutor(factory, args.workers)
    try:
        for ex in (pool, ray_ex):
            pump(engine, ex, 5.0)  # warm up: workers started, environments loaded

        fps = {"processes": [], "ray": []}
        cpu = {"processes": [], "ray": []}
        for _ in range(args.rounds):
            for name, ex in (("processes", pool), ("ray", ray_ex)):
                count = [0]
                c0 = time.process_time()
                frames, elapsed = pump(
                    engine,
                    ex,
                    args.seconds,
                    lambda r, s, count=count: count.__setitem__(0, count[0] + 1),
                )
                fps[name].append(frames / elapsed)
                cpu[name].append((time.process_time() - c0) / max(1, count[0]))
        p, r = statistics.median(fps["processes"]), statistics.median(fps["ray"])

        sizes: list[int] = []
        tasks = engine.ask(40)
        for t in tasks:
            ray_ex.submit(t)
        while ray_ex.in_flight:
            for res in ray_ex.poll(timeout=5.0):
                engine.tell(res)
                sizes.append(len(dumps(res)))
        task_bytes = statistics.mean(len(dumps(t)) for t in tasks)
        result_bytes = statistics.mean(sizes)
        frames_per_result = engine.frames / max(1, engine.explorations)

        # Fault run: kill one Ray worker process every --kill-every seconds.
        before = snapshot(engine.archive)
        reissued0 = ray_ex.reissued
        duplicates = [0]
        kills = [0]
        stop = threading.Event()

        def killer() -> None:
            while not stop.wait(args.kill_every):
                try:
                    os.kill(random.choice(ray_ex.pids()), signal.SIGKILL)
                    kills[0] += 1
                except Exception:  # an actor mid-restart has no pid to ask for yet
                    pass

        thread = threading.Thread(target=killer, daemon=True)
        thread.start()
        frames, elapsed = pump(
            engine,
            ray_ex,
            args.rounds * args.seconds,
            lambda res, s: duplicates.__setitem__(0, duplicates[0] + s.duplicate),
        )
        stop.set()
        thread.join()
        fault_fps = frames / elapsed
    finally:
        pool.close()
        ray_ex.close()

    print(
        f"# {args.workers} workers, Montezuma, RAM cells; {args.rounds} rounds of "
        f"{args.seconds:.0f}s per backend, alternating"
    )
    print(f"{'backend':<10} {'frames/s':>10} {'driver CPU ms/result':>21}")
    print(f"{'processes':<10} {p:>10.0f} {1e3 * statistics.median(cpu['processes']):>21.3f}")
    print(f"{'ray':<10} {r:>10.0f} {1e3 * statistics.median(cpu['ray']):>21.3f}")
    print(f"ray / processes = {r / p:.3f}")
    per_result = statistics.median(cpu["ray"])
    per_worker_rate = (r / args.workers) / frames_per_result
    print("\n# projection for one driver (Ray backend)")
    print(
        f"frames per result {frames_per_result:.0f}; task {task_bytes / 1e3:.1f} kB, "
        f"result {result_bytes / 1e3:.1f} kB"
    )
    print(
        f"results/s per worker {per_worker_rate:.1f}; driver CPU per result "
        f"{1e3 * per_result:.3f} ms"
    )
    print(
        f"one driver core saturates at ~{1 / (per_result * per_worker_rate):.0f} workers "
        f"(= 1 / (results/s per worker x CPU s per result)); network per worker "
        f"{per_worker_rate * (task_bytes + result_bytes) / 1e6:.2f} MB/s"
    )
    print(
        f"\n# fault run: one worker SIGKILLed every {args.kill_every:.0f}s for "
        f"{args.rounds * args.seconds:.0f}s"
    )
    print(
        f"kills {kills[0]}, tasks re-issued {ray_ex.reissued - reissued0}, "
        f"duplicates merged {duplicates[0]}, cells lost {lost(before, engine.archive)}"
    )
    print(f"frames/s {fault_fps:.0f} vs {r:.0f} undisturbed ({fault_fps / r:.2f})")


if __name__ == "__main__":
    main()
