"""How many workers one driver feeds: Ray vs processes, the driver's cost per result, faults.

``backends`` (2026-11-24): Ray actors vs the process pool at the same worker count, in
alternating rounds on one engine; the driver's CPU per merged result over Ray and the bytes per
task and result; then a fault run (one worker SIGKILLed every --kill-every seconds: tasks
re-issued, results merged twice (must be 0), cells lost or made worse (must be 0)).

``driver``: the driver alone, fed results recorded once from a short real Montezuma run, from
memory, so the figure does not depend on how many workers this machine runs: CPU per result
and bytes per task and result before (main's tree: ``tell`` per result, every found cell
shipped) and after (this tree: tasks carry table deltas, workers' results filtered by them,
``tell_many`` per round), and the projected workers per driver core at 27.8 results/s each.

``loopback``: a local Ray instance with simulated workers (asyncio actors answering each task
with a recorded result at 27.8 results/s per worker) driven by the real Ray executor, engine
and table feed: does the driver keep up, and what does a result cost it with Ray's transport,
with one task per actor call and with several (``--tasks-per-call``)?

    python bench/scaling.py backends [--workers 2] [--rounds 3] [--seconds 15] [--kill-every 5]
    python bench/scaling.py driver [--results 2000] [--repeats 3] [--keep FILE] [--profile]
    python bench/scaling.py loopback [--workers 25 50 100] [--actors 2] [--per-call 1 auto]
                                     [--recording FILE]
"""

from __future__ import annotations

import argparse
import functools
import os
import pickle
import random
import signal
import statistics
import threading
import time
from dataclasses import replace

from common import pump

from stepstone.archive import Archive, better
from stepstone.config import ExploreConfig
from stepstone.engine import Engine
from stepstone.executors.base import dumps, loads
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


def backends(args: argparse.Namespace) -> None:
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


# -- the driver alone, fed recorded results from memory ----------------------------------------

RATE = 27.8  # results/s of one Montezuma worker (the 2026-11-24 measurement above)


def record(path: str, results: int, seed: int, per_round: int) -> None:
    """Run a short real Montezuma exploration in this process and write, round by round, each
    result as the driver receives it without filtering and with it (the worker's table as the
    executor would have sent it with the round's tasks). The file is this script's own."""
    from stepstone.table import CellTable, TableFeed

    config = ExploreConfig(env="ALE/MontezumaRevenge-v5", cells="ram", seed=seed)
    worker = Worker.from_config(config)
    engine = Engine(Archive(), TrajectoryTree(), CountBased(), seed=seed)
    root = worker.root()
    engine.add_root(root)
    feed, table, known = TableFeed(engine.archive), CellTable(), None
    rounds = []
    while sum(map(len, rounds)) < results:
        tasks = engine.ask(per_round)
        d = feed.delta(known)
        if d is not None:
            table.apply(d)
            known = (d.epoch, d.version)
        full = [worker.run(t) for t in tasks]  # the worker's own table stays empty: all found
        kept = [
            replace(r, found=table.filter(r.found, t.score, t.length))
            for r, t in zip(full, tasks, strict=True)
        ]
        rounds.append([(dumps(f), dumps(k)) for f, k in zip(full, kept, strict=True)])
        engine.tell_many(full)
    worker.close()
    with open(path, "wb") as f:
        pickle.dump({"seed": seed, "root": root, "per_round": per_round, "rounds": rounds}, f)


def grouped(rounds: list, group: int) -> list:
    """Recorded rounds joined ``group`` at a time: the batch one driver round merges when
    hundreds of workers answer between two polls."""
    return [sum(rounds[i : i + group], []) for i in range(0, len(rounds), group)]


def replay(path: str, mode: str, profile: bool = False, group: int = 1) -> dict:
    """Feed the recorded results to a fresh driver engine; CPU per result of what the driver
    does per result besides the transport: ask and pickle tasks, unpickle results, merge.

    before: the code as it is imported (run with main's tree), tell() per result, all found;
    after: tasks carry table deltas (one simulated worker per round), filtered results,
    one tell_many() per round.
    """
    with open(path, "rb") as f:
        rec = pickle.load(f)  # written by record() above
    engine = Engine(Archive(), TrajectoryTree(), CountBased(), seed=rec["seed"])
    engine.add_root(rec["root"])
    after = mode == "after"
    if after:
        from stepstone.table import TableFeed

        feed, known = TableFeed(engine.archive), None
    task_bytes = result_bytes = n = 0
    prof = None
    if profile:
        import cProfile

        prof = cProfile.Profile(time.process_time)  # CPU time: the machine is shared
        prof.enable()
    c0 = time.process_time()
    for rnd in grouped(rec["rounds"], group):
        for t in engine.ask(len(rnd)):
            if after:
                t, known = feed.attach(t, known)
            task_bytes += len(dumps(t))
        wire = [k if after else f for f, k in rnd]
        result_bytes += sum(map(len, wire))
        n += len(wire)
        if after:
            stats = engine.tell_many([loads(b) for b in wire])
        else:
            stats = [engine.tell(loads(b)) for b in wire]
        # The same tasks asked again, or the recording does not fit this replay.
        assert not any(s.duplicate for s in stats), "replay diverged from the recording"
    cpu = time.process_time() - c0
    if prof is not None:
        import io
        import pstats

        prof.disable()
        out = io.StringIO()
        pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(14)
        print(out.getvalue())
    a = engine.archive
    return {
        "mode": mode,
        "cpu_ms": 1e3 * cpu / n,
        "result_kB": result_bytes / n / 1e3,
        "task_kB": task_bytes / n / 1e3,
        "results": n,
        "cells": len(a),
        "best": float(a.score[: len(a)].max()),
        "seen": int(a.times_seen[: len(a)].sum()),
    }


def driver(args: argparse.Namespace) -> None:
    """Record once, then replay before (main's tree) and after (this tree), alternating."""
    import json
    import subprocess
    import sys
    import tempfile

    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    path = args.keep or os.path.join(tempfile.mkdtemp(), "recording.pickle")
    if not (args.keep and os.path.exists(path)):
        c0 = time.perf_counter()
        record(path, args.results, args.seed, args.per_round)
        print(f"# recorded {args.results} results in {time.perf_counter() - c0:.0f}s")
    trees = {"before": args.before, "after": here}
    runs: dict[str, list[dict]] = {"before": [], "after": []}
    for _ in range(args.repeats):
        for mode, tree in trees.items():
            out = subprocess.run(
                [sys.executable, __file__, "replay", path, mode],
                env={**os.environ, "PYTHONPATH": tree},
                capture_output=True,
                text=True,
                check=True,
            )
            runs[mode].append(json.loads(out.stdout.splitlines()[-1]))
    n = runs["after"][0]["results"]
    print(
        f"# driver replay: {n} recorded Montezuma results (RAM cells), rounds of "
        f"{args.per_round}; median of {args.repeats} runs, alternating, each the least CPU of "
        f"{INNER} replays"
    )
    print(f"{'':<8} {'CPU ms/result':>14} {'result kB':>10} {'task kB':>8} {'cells':>6} "
          f"{'best':>6} {'seen':>8} {'workers/core':>13}")  # fmt: skip
    med = {}
    for mode, rows in runs.items():
        cpu = statistics.median(r["cpu_ms"] for r in rows)
        r = rows[0]
        med[mode] = cpu
        print(
            f"{mode:<8} {cpu:>14.4f} {r['result_kB']:>10.2f} {r['task_kB']:>8.2f} "
            f"{r['cells']:>6} {r['best']:>6.0f} {r['seen']:>8} {1e3 / (cpu * RATE):>13.0f}"
        )
    each = {m: [round(r["cpu_ms"], 4) for r in rows] for m, rows in runs.items()}
    print(f"after / before CPU = {med['after'] / med['before']:.3f}; each run: {each}")
    if args.profile:
        replay(path, "after", profile=True)


# -- archive shards (--shards K), fed the same recorded results ---------------------------------
def sharded_engine(rec: dict, k: int, run_dir: str):
    """A coordinator over ``k`` shard processes (a run directory of their stores in
    ``run_dir``), holding the recording's root."""
    from stepstone.shards import ShardedEngine

    config = ExploreConfig(env="ALE/MontezumaRevenge-v5", cells="ram", seed=rec["seed"], shards=k)
    engine = ShardedEngine(run_dir, config, {})
    engine.add_root(rec["root"])
    return engine


def split_wire(rec: dict, k: int) -> list[list[bytes]]:
    """The recorded (filtered) results as sharded workers send them: split by shard, each part
    pickled (the worker's work, done here before anything is timed)."""
    from stepstone.shards import split

    return [[dumps(split(loads(kept), k)) for _, kept in rnd] for rnd in rec["rounds"]]


def replay_sharded(path: str, k: int, group: int = 1) -> dict:
    """Feed the recording to a coordinator and ``k`` shard processes, as ``replay`` feeds the
    driver: ask and pickle tasks (with each shard's table deltas), unpickle results, merge one
    batch per round. CPU of the coordinator (this process) and of each shard process."""
    import tempfile

    with open(path, "rb") as f:
        rec = pickle.load(f)  # written by record() above
    wire = grouped(split_wire(rec, k), group)
    engine = sharded_engine(rec, k, tempfile.mkdtemp())
    known = None
    task_bytes = result_bytes = n = 0
    try:
        s0 = engine.cpu()
        c0 = time.process_time()
        asking = 0.0
        for rnd in wire:
            a0 = time.process_time()
            for t in engine.ask(len(rnd)):
                t, known = engine.feed.attach(t, known)
                task_bytes += len(dumps(t))
            asking += time.process_time() - a0
            result_bytes += sum(map(len, rnd))
            n += len(rnd)
            stats = engine.tell_many([loads(b) for b in rnd])
            assert not any(s.duplicate for s in stats), "replay diverged from the recording"
        cpu = time.process_time() - c0
        shard_cpu = [b - a for a, b in zip(s0, engine.cpu(), strict=True)]
        cells, best = engine.cells, engine.best_score()
    finally:
        engine.close()
    return {
        "shards": k,
        "cpu_ms": 1e3 * cpu / n,
        "ask_ms": 1e3 * asking / n,
        "shard_ms": [1e3 * c / n for c in shard_cpu],
        "result_kB": result_bytes / n / 1e3,
        "task_kB": task_bytes / n / 1e3,
        "results": n,
        "cells": cells,
        "best": best,
    }


def shards(args: argparse.Namespace) -> None:
    """The recording replayed into K shards for each K, side by side with the unsharded driver
    (``replay`` after): coordinator and per-shard CPU per result, projected workers per core."""
    import tempfile

    path = args.keep or os.path.join(tempfile.mkdtemp(), "recording.pickle")
    if not (args.keep and os.path.exists(path)):
        record(path, args.results, args.seed, args.per_round)
    rows: dict = {"driver": []}
    for _ in range(args.repeats):  # alternating, each the least CPU of INNER replays
        rows["driver"].append(min((replay(path, "after", group=args.group) for _ in range(INNER)),
                                  key=lambda r: r["cpu_ms"]))  # fmt: skip
        for k in args.shards:
            runs = [replay_sharded(path, k, args.group) for _ in range(INNER)]
            rows.setdefault(k, []).append(min(runs, key=lambda r: r["cpu_ms"]))
    n = rows["driver"][0]["results"]
    print(f"# shards replay: {n} recorded Montezuma results (RAM cells), rounds of "
          f"{args.per_round}, merged {args.group} at a time; median of {args.repeats} runs, "
          f"each the least coordinator CPU of {INNER}; CPU time per process "
          "(2 cores, shared)")  # fmt: skip
    print(f"{'':<10} {'coord ms/res':>12} {'max shard ms/res':>16} {'shards ms/res':>24} "
          f"{'result kB':>9} {'cells':>6} {'best':>5} {'coord w/core':>12} "
          f"{'shard w/core':>12}")  # fmt: skip
    for k, runs in rows.items():
        cpu = statistics.median(r["cpu_ms"] for r in runs)
        r = min(runs, key=lambda r: abs(r["cpu_ms"] - cpu))
        each = r.get("shard_ms", [])
        worst = max(each) if each else float("nan")
        label = "driver" if k == "driver" else f"{k} shards"
        print(
            f"{label:<10} {cpu:>12.4f} {worst:>16.4f} "
            f"{' '.join(f'{x:.4f}' for x in each):>24} {r['result_kB']:>9.2f} "
            f"{r['cells']:>6} {r['best']:>5.0f} {1e3 / (cpu * RATE):>12.0f} "
            f"{(1e3 / (worst * RATE)) if each else float('nan'):>12.0f}"
        )


class SimExecutor(RayExecutor):
    """The Ray executor's own code, its W workers simulated: each is a logical slot in one of
    a few asyncio actors that answer every call of k tasks after 2k / RATE s (two calls in
    flight per worker: RATE results/s each) with the next k recorded results (pickled as they
    were recorded), reporting k / RATE s of work (what picks ``per_call``)."""

    def __init__(
        self, workers: int, actors: int, results: list[bytes], feed, per_call: int | None
    ) -> None:
        import logging

        import ray

        self.ray = ray
        self.started_ray = not ray.is_initialized()
        if self.started_ray:
            os.environ.setdefault("RAY_worker_niceness", "0")  # as RayExecutor does
            ray.init(address=os.environ.get("RAY_ADDRESS") or "local", include_dashboard=False,
                     log_to_driver=False, logging_level=logging.ERROR)  # fmt: skip
        sim = ray.remote(num_cpus=0, max_concurrency=100_000)(SimWorkers)
        per = (len(results) + actors - 1) // actors
        handles = [sim.remote(results[k * per : (k + 1) * per]) for k in range(actors)]
        ray.get([h.ready.remote() for h in handles])
        self._setup([handles[i % actors] for i in range(workers)], feed, per_call)


class SimWorkers:
    def __init__(self, results: list[bytes]) -> None:
        self.results, self.i = results, 0

    def ready(self) -> bool:
        return True

    async def run(self, tasks_bytes: bytes) -> bytes:
        import asyncio

        tasks = loads(tasks_bytes)
        await asyncio.sleep(len(tasks) * 2 / RATE)
        out = []
        for task in tasks:
            r = loads(self.results[self.i % len(self.results)])
            self.i += 1
            r.task_id = task.task_id
            out.append(r)
        return dumps((out, len(tasks) / RATE))


def loopback(args: argparse.Namespace) -> None:
    """A local Ray instance, W simulated workers sending recorded (filtered) results at RATE
    each, one row per tasks-per-call setting side by side: does the driver (the real Ray
    executor, engine and table feed) keep up, and what does a result cost its CPU?"""
    import tempfile

    from stepstone.table import TableFeed

    path = args.recording or os.path.join(tempfile.mkdtemp(), "recording.pickle")
    if not args.recording:
        record(path, args.results, args.seed, 16)
    with open(path, "rb") as f:
        rec = pickle.load(f)  # written by record() above
    k = args.shards
    if k:  # as sharded workers send them
        results = [b for rnd in split_wire(rec, k) for b in rnd]
    else:
        results = [kept for rnd in rec["rounds"] for _, kept in rnd]
    print(f"# loopback Ray, recorded results at {RATE} results/s per simulated worker, "
          f"{args.actors} actor processes, {args.seconds:.0f}s a row"
          + (f", {k} archive shards (CPU per result of each after the driver's)"
             if k else ""))  # fmt: skip
    print(f"{'workers':>7} {'per call':>8} {'target/s':>9} {'merged/s':>9} {'kept up':>8} "
          f"{'driver CPU ms/result':>21} {'driver core used':>17} "
          f"{'workers/core':>13}")  # fmt: skip
    for workers in args.workers:
        for per_call in args.per_call:
            fixed = None if per_call == "auto" else int(per_call)
            if k:
                engine = sharded_engine(rec, k, tempfile.mkdtemp())
                feed = engine.feed
            else:
                engine = Engine(Archive(), TrajectoryTree(), CountBased(), seed=0)
                engine.add_root(rec["root"])
                feed = TableFeed(engine.archive)
            ex = SimExecutor(workers, args.actors, results, feed, fixed)
            prof = None
            if args.profile:
                import cProfile

                prof = cProfile.Profile(time.process_time)
            try:
                merged = 0
                w0 = time.perf_counter()
                warm = w0 + 3.0  # the first tasks fill the pipeline, per_call settles
                phase = dict.fromkeys(("ask", "submit", "poll", "tell"), 0.0)
                clock = time.process_time
                while time.perf_counter() - w0 < args.seconds + 3.0:
                    t0 = clock()
                    want = ex.capacity - ex.in_flight
                    tasks = engine.ask(want) if want > 0 else []
                    t1 = clock()
                    for task in tasks:
                        ex.submit(task)
                    t2 = clock()
                    got = ex.poll(timeout=0.05)  # waits in ray.wait, which costs no CPU
                    t3 = clock()
                    engine.tell_many(got)
                    t4 = clock()
                    if time.perf_counter() >= warm:
                        if merged == 0:
                            w1, c1 = time.perf_counter(), time.process_time()
                            s1 = engine.cpu() if k else []
                            phase = dict.fromkeys(phase, 0.0)
                            if prof is not None:
                                prof.enable()
                        else:
                            for name, a, b in (("ask", t0, t1), ("submit", t1, t2),
                                               ("poll", t2, t3), ("tell", t3, t4)):  # fmt: skip
                                phase[name] += b - a
                        merged += len(got)
                wall, cpu = time.perf_counter() - w1, time.process_time() - c1
                shard_cpu = [b - a for a, b in zip(s1, engine.cpu(), strict=True)] if k else []
            finally:
                ray = ex.ray
                for h in {id(a): a for a in ex.actors}.values():
                    ray.kill(h)
                if k:
                    engine.close()
            rate = merged / wall
            target = workers * RATE
            per_result = cpu / max(1, merged)
            if prof is not None:
                import io
                import pstats

                prof.disable()
                out = io.StringIO()
                pstats.Stats(prof, stream=out).sort_stats(args.sort).print_stats(40)
                print(out.getvalue())
            label = f"{ex.per_call}" + (" auto" if fixed is None else "")
            print(
                f"{workers:>7} {label:>8} {target:>9.0f} {rate:>9.0f} {rate / target:>8.2f} "
                f"{1e3 * per_result:>21.3f} {cpu / wall:>17.2f} "
                f"{1 / (RATE * per_result):>13.0f}"
                + "".join(f" shard {1e3 * c / max(1, merged):.4f}" for c in shard_cpu)
            )
            # The coordinator's CPU by phase: ask (the engine or shards choose cells), submit
            # (pickling tasks, Ray calls), poll (Ray's wait and get, unpickling results, the
            # next calls), tell (merging, or forwarding parts to the shards and their replies).
            print("        coordinator ms/result by phase: " + ", ".join(
                f"{name} {1e3 * c / max(1, merged):.4f}" for name, c in phase.items()))  # fmt: skip
    ex.ray.shutdown()


INNER = 3  # replays per process: the least CPU of them is the least disturbed by other jobs


def replay_child(args: argparse.Namespace) -> None:
    import json

    runs = [replay(args.path, args.mode) for _ in range(INNER)]
    print(json.dumps(min(runs, key=lambda r: r["cpu_ms"])))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="part", required=True)
    b = sub.add_parser("backends", help="Ray vs processes, driver cost, fault run (2026-11-24)")
    b.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    b.add_argument("--rounds", type=int, default=3)
    b.add_argument("--seconds", type=float, default=15.0)
    b.add_argument("--kill-every", type=float, default=5.0)
    b.set_defaults(run=backends)
    d = sub.add_parser("driver", help="driver CPU and bytes per result, before and after")
    d.add_argument("--results", type=int, default=2000)
    d.add_argument("--per-round", type=int, default=16)
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--repeats", type=int, default=3)
    d.add_argument("--before", default="/work/main", help="source tree of the code before")
    d.add_argument("--profile", action="store_true")
    d.add_argument("--keep", default=None, help="keep the recording in this file (reused)")
    d.set_defaults(run=driver)
    lo = sub.add_parser("loopback", help="simulated workers over a local Ray: driver keeps up?")
    lo.add_argument("--workers", type=int, nargs="+", default=[25, 50, 100, 200])
    lo.add_argument("--actors", type=int, default=2, help="processes the workers share")
    lo.add_argument("--seconds", type=float, default=20.0)
    lo.add_argument("--results", type=int, default=600)
    lo.add_argument("--seed", type=int, default=0)
    lo.add_argument("--recording", default=None, help="a file written by 'driver --keep'")
    lo.add_argument(
        "--per-call",
        nargs="+",
        default=["1", "auto"],
        help="tasks per Ray call, each a row ('auto': the executor's choice)",
    )
    lo.add_argument("--shards", type=int, default=0, help="archive shards (0: none)")
    lo.add_argument("--profile", action="store_true", help="profile each row (CPU time)")
    lo.add_argument("--sort", default="tottime", help="profile order (pstats key)")
    lo.set_defaults(run=loopback)
    sh = sub.add_parser("shards", help="coordinator and shard CPU per result, by shard count")
    sh.add_argument("--shards", type=int, nargs="+", default=[1, 2, 4])
    sh.add_argument("--results", type=int, default=2000)
    sh.add_argument("--per-round", type=int, default=16)
    sh.add_argument("--group", type=int, default=16, help="recorded rounds merged at once")
    sh.add_argument("--seed", type=int, default=0)
    sh.add_argument("--repeats", type=int, default=3)
    sh.add_argument("--keep", default=None, help="keep the recording in this file (reused)")
    sh.set_defaults(run=shards)
    r = sub.add_parser("replay", help="(internal) one replay, as JSON")
    r.add_argument("path")
    r.add_argument("mode", choices=("before", "after"))
    r.set_defaults(run=replay_child)
    args = ap.parse_args()
    args.run(args)


if __name__ == "__main__":
    main()
