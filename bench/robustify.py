"""Phase 2 on a grid world: backward algorithm vs. behaviour cloning vs. PPO from reset.

Explores the environment (Go-Explore phase 1), then trains each method for the same number
of environment steps from the run's trajectory to its goal and prints the success rate (the
goal reached) under sticky actions (0.25) over 20 sampled-action episodes from reset.

    python bench/robustify.py MiniGrid-DoorKey-5x5-v0 --explore 50k --frames 200k --seeds 0,1,2
    python bench/robustify.py UserCorridor-v0 --import corridor --goal terminated \
        --explore 20k --frames 20k
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from stepstone.config import ExploreConfig, parse_count
from stepstone.learn.robustify import RobustifyConfig, robustify
from stepstone.runner import RunOptions, open_run, run


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("env", nargs="?", default="MiniGrid-DoorKey-5x5-v0")
    ap.add_argument("--explore", default="50k", help="phase 1 budget")
    ap.add_argument("--frames", default="200k", help="training steps of each method")
    ap.add_argument("--seeds", default="0,1,2", help="training seeds (one exploration run)")
    ap.add_argument("--out", type=Path, default=Path("bench/out/robustify"))
    ap.add_argument("--import", dest="imports", action="append", default=[],
                    help="a module that registers the environment (e.g. corridor)")  # fmt: skip
    ap.add_argument("--goal", default=None, help="the run's goal (stepstone explore --goal)")
    args = ap.parse_args()
    config = ExploreConfig(args.env, imports=tuple(args.imports), goal=args.goal)
    store = open_run(config, args.out / args.env.replace("/", "_"))
    run(store, RunOptions(parse_count(args.explore), workers=1, progress=False))
    rows = []
    for seed in (int(s) for s in args.seeds.split(",")):
        cfg = RobustifyConfig(frames=parse_count(args.frames), seed=seed)
        rows.append(robustify(store, cfg, fresh=True))
        print(json.dumps({k: v for k, v in rows[-1].items() if k.startswith("success")}))
    print(f"\n{args.env}: demonstration of {rows[0]['demo_length']} actions, "
          f"{args.frames} training steps per method, sticky actions 0.25, "
          f"success = {rows[0]['success_criterion']}")  # fmt: skip
    for key in ("success_backward", "success_bc", "success_ppo_from_reset"):
        values = [r[key] for r in rows]
        print(f"  {key.removeprefix('success_'):<16} mean {statistics.mean(values):.2f}  {values}")


if __name__ == "__main__":
    main()
