"""How harsh each kind of sticky action is: a demonstration replayed open loop under each.

From points along a run's demonstration (the one `stepstone robustify D` trains on), its own
remaining actions are replayed under sticky actions 0.25 drawn per emulator frame (ALE's
protocol, robustify's default) and per whole step (`--sticky-unit action`), and the share of
replays that still reach the goal is printed for each. No policy: the demonstration alone, so
the difference is the noise's.

    python bench/sticky.py /work/runs/phase2/montezuma --every 20 --replays 20
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

import numpy as np

from stepstone.learn.robustify import (
    STICKY_UNITS,
    RobustifyConfig,
    Runner,
    demonstration,
    demonstrations,
)
from stepstone.store.sqlite import RunStore
from stepstone.trajectories import TrajectoryTree


def replay_rate(runner: Runner, demo, point: int, replays: int) -> float:
    """The share of open-loop replays from ``point`` that reach the demonstration's end."""
    success = demo.success(runner)
    wins = 0
    for _ in range(replays):
        runner.start(demo, point, noops=False)
        total = demo.returns[point]
        for a in demo.actions[point:]:
            r, done = runner.step(int(a))
            total += r
            if success(total) or done or runner.life_lost:
                break
        wins += bool(success(total))
    return wins / replays


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("--every", type=int, default=20, help="actions between replay points")
    ap.add_argument("--replays", type=int, default=20, help="replays from each point")
    ap.add_argument("--sticky", type=float, default=0.25)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    store = RunStore.open(args.run_dir)
    archive = store.load_archive()
    base = RobustifyConfig(sticky=args.sticky, seed=args.seed)
    runners = {u: Runner(store, replace(base, sticky_unit=u)) for u in STICKY_UNITS}
    first = runners["frame"]
    demo = demonstrations(first, archive, TrajectoryTree(store.nodes),
                          demonstration(archive, None), base)[0]  # fmt: skip
    n = len(demo.actions)
    print(f"demonstration: {n} actions, return {demo.returns[-1]:g}; {args.replays} open-loop "
          f"replays from each point, sticky {args.sticky:g}")  # fmt: skip
    print(f"{'from action':>11}  " + "  ".join(f"per {u:<6}" for u in STICKY_UNITS))
    rates: dict[str, list[float]] = {u: [] for u in STICKY_UNITS}
    for point in range(0, n, args.every):
        row = [replay_rate(runners[u], demo, point, args.replays) for u in STICKY_UNITS]
        for u, r in zip(STICKY_UNITS, row, strict=True):
            rates[u].append(r)
        print(f"{point:>11}  " + "  ".join(f"{r:>10.2f}" for r in row), flush=True)
    print(f"{'mean':>11}  " + "  ".join(f"{np.mean(rates[u]):>10.2f}" for u in STICKY_UNITS))
    for r in runners.values():
        r.worker.close()


if __name__ == "__main__":
    main()
