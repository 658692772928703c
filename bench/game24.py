"""Game of 24 over the standard 1,362 puzzles: success rate and steps to solve, per selector.

Each puzzle is explored from scratch with a fixed budget of environment steps (one step =
one arithmetic operation; a puzzle's whole tree has 48 x 24 x 8 = 9,216 leaves). Reported per
selector: the share of puzzles solved within the budget and the mean steps to the first
solution among those solved.

    python bench/game24.py [--budget 60] [--selectors uniform,count] [--limit 0]
"""

from __future__ import annotations

import argparse
import statistics
import time

from common import until_success

from stepstone.config import ExploreConfig
from stepstone.envs.game24 import standard_puzzles


def solve(puzzle: tuple[int, ...], selector: str, budget: int, seed: int) -> int | None:
    """Steps to the first solution within ``budget`` steps, or None."""
    env = "game24:" + ",".join(map(str, puzzle))
    config = ExploreConfig(env=env, explore_steps=3, selector=selector, seed=seed)
    return until_success(config, budget, batch=1)[0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--budget", type=int, default=60)
    ap.add_argument("--selectors", default="uniform,count")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--limit", type=int, default=0, help="first N puzzles only (0: all)")
    args = ap.parse_args()
    puzzles = standard_puzzles()[: args.limit or None]
    print(f"# Game of 24, {len(puzzles)} puzzles, budget {args.budget} steps per puzzle")
    print(f"{'selector':<10} {'solved':>8} {'rate':>7} {'mean steps':>11} {'seconds':>8}")
    for selector in args.selectors.split(","):
        t0 = time.perf_counter()
        steps = [solve(p, selector, args.budget, args.seed) for p in puzzles]
        solved = [s for s in steps if s is not None]
        mean = statistics.mean(solved) if solved else float("nan")
        print(
            f"{selector:<10} {len(solved):>8} {len(solved) / len(puzzles):>7.3f} "
            f"{mean:>11.1f} {time.perf_counter() - t0:>8.1f}"
        )


if __name__ == "__main__":
    main()
