"""Engine overhead and worker scaling on Atari, measured side by side in one run.

1. One worker exploring (the full ask/run/tell loop, in this process) against raw ale-py
   stepping with the same frame skip and the same action distribution (random, repeated with
   p=0.95), alternating in short rounds so that machine noise hits both alike. Reported: the
   median over rounds of engine frames/s divided by raw frames/s, for RAM and downscaled cells.
2. N worker processes against one, through the same process-pool executor: frames/s ratio.

    python bench/throughput.py [--game montezuma_revenge] [--rounds 5] [--seconds 4]
"""

from __future__ import annotations

import argparse
import functools
import os
import statistics
import time

import numpy as np
from common import pump

from stepstone.archive import Archive
from stepstone.config import ExploreConfig
from stepstone.engine import Engine
from stepstone.executors.processes import ProcessExecutor
from stepstone.explorers.random_repeat import RandomRepeat
from stepstone.selectors import CountBased
from stepstone.trajectories import TrajectoryTree
from stepstone.worker import Worker


def raw_fps(worker: Worker, seconds: float, rng: np.random.Generator) -> float:
    """ale-py alone: act() with the adapter's frame skip, reset on game over."""
    env = worker.env
    ale, actions = env.ale, env.actions
    plan = RandomRepeat(0.95).actions(env, rng, 100_000)
    codes = [actions[a] for a in plan]
    ale.reset_game()
    steps = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        for a in codes[steps % 99_000 : steps % 99_000 + 1000]:
            ale.act(a)
            if ale.game_over():
                ale.reset_game()
        steps += 1000
    return steps * env.frames_per_step / (time.perf_counter() - start)


def engine_fps(worker: Worker, engine: Engine, seconds: float) -> float:
    """The whole exploration loop: select, restore, explore, compute cells, snapshot, merge."""
    frames0 = engine.frames
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        for task in engine.ask(8):
            engine.tell(worker.run(task))
    return (engine.frames - frames0) / (time.perf_counter() - start)


def overhead(game: str, cells: str, rounds: int, seconds: float) -> dict:
    worker = Worker.from_config(ExploreConfig(env=f"ALE/{game}-v5", cells=cells))
    engine = Engine(Archive(), TrajectoryTree(), CountBased())
    engine.add_root(worker.root())
    engine_fps(worker, engine, 2.0)  # warm up: let the archive grow past the first room
    rng = np.random.default_rng(0)
    raws, ours = [], []
    for _ in range(rounds):
        raws.append(raw_fps(worker, seconds, rng))
        ours.append(engine_fps(worker, engine, seconds))
    ratios = [o / r for o, r in zip(ours, raws, strict=True)]
    return {
        "cells": cells,
        "raw_fps": statistics.median(raws),
        "engine_fps": statistics.median(ours),
        "ratio": statistics.median(ratios),
        "archive": len(engine.archive),
    }


def pool_fps(config: ExploreConfig, workers: int, seconds: float) -> float:
    """Frames/s of the process pool with ``workers`` processes, driver merging as in a run."""
    factory = functools.partial(Worker.from_config, config)
    local = factory()
    engine = Engine(Archive(), TrajectoryTree(), CountBased())
    engine.add_root(local.root())
    ex = ProcessExecutor(factory, workers)
    try:
        pump(engine, ex, 3.0)  # warm up: processes started, environments loaded
        frames, elapsed = pump(engine, ex, seconds)
        return frames / elapsed
    finally:
        ex.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--game", default="MontezumaRevenge")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=4.0)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    args = ap.parse_args()

    print(f"# engine vs raw ale-py, {args.game}, {args.rounds} rounds of {args.seconds}s each")
    print(f"{'cells':<10} {'raw frames/s':>13} {'engine frames/s':>16} {'ratio':>7} {'cells':>7}")
    for cells in ("ram", "downscale"):
        r = overhead(args.game, cells, args.rounds, args.seconds)
        print(
            f"{r['cells']:<10} {r['raw_fps']:>13.0f} {r['engine_fps']:>16.0f} "
            f"{r['ratio']:>7.3f} {r['archive']:>7}"
        )

    config = ExploreConfig(env=f"ALE/{args.game}-v5", cells="ram")
    seconds = args.rounds * args.seconds
    one = pool_fps(config, 1, seconds)
    many = pool_fps(config, args.workers, seconds)
    print(f"\n# process pool, ram cells, {seconds:.0f}s each")
    print(f"{'workers':<8} {'frames/s':>10} {'vs 1':>6}")
    print(f"{1:<8} {one:>10.0f} {1.0:>6.2f}")
    print(f"{args.workers:<8} {many:>10.0f} {many / one:>6.2f}")


if __name__ == "__main__":
    main()
