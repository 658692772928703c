"""Where a Montezuma training's episodes end: its saved policy (D/robustify/policy.pt, written
with every checkpoint) run from points of the demonstration as training runs it (sticky
actions per frame, the entropy boost for the first 100 actions), each episode to a win, a lost
life or the step limit (2 x the actions left + 20; not --lag); then each loss placed on the
demonstration's path by Panama Joe's position (RAM bytes 42 and 43, x and y).

    python bench/phase2_probe.py D --points 210,250,270 --episodes 6 [--life-loss continue]

With --life-loss continue (a training under that rule) an episode goes on past a lost life,
to the game's end or the step limit, and each loss lists the places its lives were lost.

A probe, not a measurement of the policy: few episodes, and the policy is the one of the last
checkpoint.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from stepstone.learn.evaluate import load_policy, ram_of  # noqa: E402
from stepstone.learn.ppo import act  # noqa: E402
from stepstone.learn.robustify import (  # noqa: E402
    RobustifyConfig,
    Runner,
    demonstration,
    demonstrations,
    episode_limit,
)
from stepstone.store.sqlite import RunStore  # noqa: E402
from stepstone.trajectories import TrajectoryTree  # noqa: E402

X, Y = 42, 43  # Montezuma's RAM: Panama Joe's position


def policy_and_demo(run_dir: Path, sticky: float, seed: int) -> tuple:
    """D's saved policy, what policy.pt says of it, a Runner feeding it what it was trained to
    read, and the demonstration it trained on."""
    store = RunStore.open(run_dir)
    model, info = load_policy(run_dir / "robustify" / "policy.pt", seed)
    runner = Runner(store, RobustifyConfig(sticky=sticky, seed=seed, ram=ram_of(info)))
    archive = store.load_archive()
    best = demonstration(archive, None)
    demo = demonstrations(runner, archive, TrajectoryTree(store.nodes), best, runner.cfg)[0]
    return model, info, runner, demo


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("--points", default="210,250,270", help="start points, comma-separated")
    ap.add_argument("--episodes", type=int, default=6, help="episodes from each point")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--life-loss", choices=("end", "continue"), default="end")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(1)
    model, info, runner, demo = policy_and_demo(args.run_dir, 0.25, args.seed)
    T = len(demo.actions)
    runner.env.reset(runner.seed)  # the demonstration's path, to place the losses on
    path = [runner.env.ram()[[X, Y]].astype(int)]
    for a in demo.actions:
        runner.env.step(int(a))
        path.append(runner.env.ram()[[X, Y]].astype(int))
    where = np.array(path)
    print(f"{args.run_dir}: the policy after {info['frames']:,} training steps, {T} actions")
    steps: dict[str, int] = {}
    for point in (int(p) for p in args.points.split(",")):
        ends = []
        for _ in range(args.episodes):
            runner.start(demo, point, noops=True)
            ret, n, end, first, deaths = 0.0, 0, "", None, []
            while not end:
                a, _, _ = act(model, runner.obs(), boost=n < 100)
                r, done = runner.step(a)
                ret, n = ret + r, n + 1
                first = n if first is None and r else first
                if runner.life_lost:
                    deaths.append(runner.env.ram()[[X, Y]].astype(int).tolist())
                if runner.reached(demo.returns[point] + ret):
                    end = "win"
                elif done or (runner.life_lost and args.life_loss == "end"):
                    end = "life"
                elif n >= episode_limit(T - point):
                    end = "limit"
            pos = runner.env.ram()[[X, Y]].astype(int)
            d = np.abs(where - pos).sum(axis=1)
            near = np.flatnonzero(d == d.min())[:3].tolist()
            gained = f", scored {ret:g} (first at action {first})" if ret else ", scored 0"
            lives = f"; lives lost at (x, y) {deaths}" if args.life_loss == "continue" else ""
            ends.append((end, n, f"x {pos[0]} y {pos[1]}, demonstration {near} (off by "
                                 f"{d.min()}){gained}{lives}"))  # fmt: skip
            steps[end] = steps.get(end, 0) + n
        for kind in ("win", "life", "limit"):
            mine = [e for e in ends if e[0] == kind]
            if mine:
                print(f"from {point}: {kind} {len(mine)} of {args.episodes}, "
                      f"{np.mean([e[1] for e in mine]):.0f} actions on average")  # fmt: skip
                for e in mine if kind != "win" else []:
                    print(f"    after {e[1]} actions at {e[2]}")
    total = sum(steps.values())
    print(
        "share of the probe's steps: " + ", ".join(f"{k} {v / total:.2f}" for k, v in steps.items())
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
