"""Selectors compared at the same frame budget: frames to first success, cells found, 3 seeds.

Each (environment, selector, seed) is explored from scratch in one process until the goal is
reached or the budget is spent. Frames to success counts every environment step; a run that
does not succeed counts as the budget (reported as ">budget" when no seed succeeded).

    python bench/selectors.py --envs MiniGrid-DoorKey-5x5-v0 MiniGrid-KeyCorridorS3R1-v0 \
        --selectors uniform,count,knapsack --seeds 0,1,2 --frames 100k
"""

from __future__ import annotations

import argparse
import statistics

from common import until_success

from stepstone.config import ExploreConfig, parse_count


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--envs",
        nargs="+",
        default=[
            "MiniGrid-DoorKey-5x5-v0",
            "MiniGrid-KeyCorridorS3R1-v0",
            "MiniGrid-MultiRoom-N2-S4-v0",
            "game24:3,3,8,8",
        ],
    )
    ap.add_argument("--selectors", default="uniform,count,knapsack")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--frames", default="100k")
    ap.add_argument("--explore-steps", type=int, default=100)
    args = ap.parse_args()
    budget = parse_count(args.frames)
    seeds = [int(s) for s in args.seeds.split(",")]
    print(f"# budget {budget:,} frames, seeds {seeds}")
    print(
        f"{'environment':<30} {'selector':<9} {'solved':>6} {'median frames to success':>25} "
        f"{'mean cells':>10}"
    )
    for env in args.envs:
        steps = 3 if env.startswith("game24") else args.explore_steps
        for selector in args.selectors.split(","):
            results = [
                until_success(
                    ExploreConfig(env, seed=s, selector=selector, explore_steps=steps), budget
                )
                for s in seeds
            ]
            frames = [f if f is not None else budget for f, _ in results]
            solved = sum(f is not None for f, _ in results)
            med = statistics.median(frames)
            shown = f"{med:,.0f}" if solved else f">{budget:,}"
            cells = statistics.mean(c for _, c in results)
            print(f"{env:<30} {selector:<9} {solved:>4}/{len(seeds)} {shown:>25} {cells:>10.0f}")


if __name__ == "__main__":
    main()
