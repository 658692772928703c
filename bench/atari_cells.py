"""`python bench/atari_cells.py`: fixed against dynamic downscaling on Atari games no issue names.

Atari's `--cells auto` was fixed 11 x 8 x 8 downscaling chosen on Montezuma's Revenge and Pitfall
alone. This runs both kinds, each with what `--selector auto` gives it (clustered for fixed
cells, count for dynamic), on nine games known as hard to explore or long unsolved by
reinforcement learning (Berzerk, Bowling, Centipede, Freeway, Gravitar, Private Eye, Skiing,
Solaris, Venture; Montezuma and Pitfall have their own sections) and five others a new
user tries first, with the command a user types, one worker, and prints each run's archive, best
score, run-directory size and speed.

    nice -n 5 python bench/atari_cells.py [--frames 1M] [--seeds 0] [--jobs 2] [--games A,B]
                                          [--cells downscale,dynamic]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from multiprocessing import Pool
from pathlib import Path

GAMES = ["Berzerk", "Bowling", "Centipede", "Freeway", "Gravitar", "PrivateEye", "Skiing",
         "Solaris", "Venture", "Breakout", "MsPacman", "Pong", "Qbert", "Seaquest"]  # fmt: skip
CELLS = ["downscale", "dynamic"]


def one(job: tuple) -> dict:
    game, cells, frames, seed = job
    with tempfile.TemporaryDirectory() as d:
        run_dir = Path(d) / "run"
        cmd = [sys.executable, "-m", "stepstone.cli", "explore", f"ALE/{game}-v5",
               "--cells", cells, "--frames", frames, "--workers", "1", "--seed", str(seed),
               "--run-dir", str(run_dir), "--no-progress"]  # fmt: skip
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            return {"game": game, "cells": cells, "seed": seed, "error": done.stderr[-300:]}
        s = json.loads((run_dir / "summary.json").read_text())
        size = sum(p.stat().st_size for p in run_dir.rglob("*") if p.is_file())
    last = (s.get("cell_choices") or [{}])[-1]  # fixed cells, or dynamic before a choice
    return {"game": game, "cells": cells, "seed": seed, "frames": s["frames"],
            "archived": s["cells"], "best": s["best_score"], "mb": size / 1e6,
            "fps": s["frames_per_second"], "selector": s["selector"],
            "shape": last.get("text", "11 x 8 pixels, 8 levels")}  # fmt: skip


def row(r: dict) -> str:
    if "error" in r:
        return f"| {r['game']} | {r['cells']} | {r['seed']} | failed: {r['error']!r} |"
    cols = [r["game"], f"{r['cells']} ({r['selector']})", r["seed"], f"{r['frames']:,}",
            f"{r['archived']:,}", f"{r['best']:g}", f"{r['mb']:.1f}", f"{r['fps']:,.0f}",
            r["shape"]]  # fmt: skip
    return "| " + " | ".join(map(str, cols)) + " |"


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--frames", default="1M")
    p.add_argument("--seeds", default="0", help="comma-separated seeds")
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--games", default=",".join(GAMES))
    p.add_argument("--cells", default=",".join(CELLS), help="the kinds to run, comma-separated")
    args = p.parse_args()
    jobs = [(g, c, args.frames, int(s)) for s in args.seeds.split(",")
            for g in args.games.split(",") for c in args.cells.split(",")]  # fmt: skip
    print("| game | cells (selector) | seed | frames | cells archived | best score | run dir MB "
          "| frames/s | last shape |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|", flush=True)
    with Pool(args.jobs) as pool:
        for r in pool.imap(one, jobs):
            print(row(r), flush=True)


if __name__ == "__main__":
    main()
