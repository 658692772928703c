"""Selectors compared at the same frame budget: frames to first success, cells, best score.

Each (environment, selector, seed) is explored from scratch in one process until the goal is
reached or the budget is spent; --jobs runs that many of them side by side. Frames to success
counts every environment step (and, for TextWorld, the steps replayed to return); a run that
does not succeed counts as the budget (shown as ">budget" when no seed succeeded).
``textworld:tw-GAME:LEVEL`` names a game generated with tw-make into --out (made if missing);
``ENV=BUDGET`` gives one environment its own budget.

    python bench/selectors.py --frames 500k --seeds 0,1,2 --jobs 2
    python bench/selectors.py --import minigrid_long --envs MiniGrid-MultiRoom-N6-Long-v0=1M
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

from common import until_success

from stepstone.config import ExploreConfig, parse_count

DEFAULT_ENVS = [
    "MiniGrid-KeyCorridorS6R3-v0",
    "MiniGrid-MultiRoom-N6-v0",
    "textworld:tw-treasure_hunter:30=50k",
    "montezuma=1M",
]
TEXTWORLD_RECIPES = {"tw-treasure_hunter", "tw-coin_collector"}


def textworld_game(name: str, out: Path) -> str:
    """'textworld:tw-treasure_hunter:20' -> a game of that level made by tw-make (seed 1)."""
    _, recipe, level = name.split(":")
    path = out / "games" / f"{recipe}-{level}.z8"
    if not path.exists():
        tw_make = Path(sys.executable).parent / "tw-make"
        cmd = [str(tw_make), recipe, "--level", level, "--seed", "1", "--output", str(path), "-f"]
        subprocess.run(cmd, check=True, capture_output=True)
    return f"textworld:{path}"


def one(job: tuple[str, str, int, int, tuple[str, ...]]) -> dict:
    env, selector, seed, budget, imports = job
    steps = 3 if env.startswith("game24") else 100
    config = ExploreConfig(env, seed=seed, selector=selector, explore_steps=steps, imports=imports)
    frames, cells, best = until_success(config, budget)
    return {"env": env, "selector": selector, "seed": seed, "budget": budget,
            "frames_to_success": frames, "cells": cells, "best_score": best}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--envs", nargs="+", default=DEFAULT_ENVS)
    ap.add_argument("--selectors", default="uniform,count,knapsack,novelty,rnd,rdd")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--frames", default="500k", help="budget per run (Montezuma: per run too)")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--out", type=Path, default=Path("bench/out/selectors"))
    ap.add_argument("--import", dest="imports", action="append", default=[],
                    help="a module registering environments (e.g. minigrid_long)")  # fmt: skip
    args = ap.parse_args()
    default_budget = parse_count(args.frames)
    seeds = [int(s) for s in args.seeds.split(",")]
    selectors = args.selectors.split(",")
    args.out.mkdir(parents=True, exist_ok=True)
    names = [e.partition("=")[0] for e in args.envs]
    budgets = [parse_count(e.partition("=")[2]) if "=" in e else default_budget for e in args.envs]
    envs = [textworld_game(e, args.out) if e.startswith("textworld:tw-") else e for e in names]
    plan = list(zip(envs, budgets, strict=True))
    imports = tuple(args.imports)
    jobs = [(e, sel, s, b, imports) for e, b in plan for sel in selectors for s in seeds]
    # one JSON line per finished run: a run that is stopped and started again skips those
    log = args.out / "results.jsonl"
    rows = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    done = {(r["env"], r["selector"], r["seed"], r["budget"]) for r in rows}
    todo = [j for j in jobs if j[:4] not in done]
    with ProcessPoolExecutor(args.jobs) as pool, log.open("a") as f:
        for job in as_completed([pool.submit(one, j) for j in todo]):
            rows.append(job.result())
            f.write(json.dumps(rows[-1]) + "\n")
            f.flush()
    rows = [r for r in rows if (r["env"], r["selector"], r["seed"], r["budget"]) in
            {j[:4] for j in jobs}]  # fmt: skip

    print(f"# seeds {seeds}")
    print(
        f"{'environment':<34} {'budget':>7} {'selector':<9} {'solved':>6} "
        f"{'median frames to success':>25} {'mean cells':>10} {'mean best':>10}"
    )
    for env, shown_env, budget in zip(envs, names, budgets, strict=True):
        for sel in selectors:
            rs = [r for r in rows if r["env"] == env and r["selector"] == sel]
            frames = [r["frames_to_success"] or budget for r in rs]
            solved = sum(r["frames_to_success"] is not None for r in rs)
            med = f"{statistics.median(frames):,.0f}" if solved else f">{budget:,}"
            cells = statistics.mean(r["cells"] for r in rs)
            best = statistics.mean(r["best_score"] for r in rs)
            print(
                f"{shown_env:<34} {budget:>7,} {sel:<9} {solved:>4}/{len(rs)} {med:>25} "
                f"{cells:>10.0f} {best:>10g}"
            )


if __name__ == "__main__":
    main()
