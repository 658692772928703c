"""Montezuma's Revenge or Pitfall at fixed frame budgets: Go-Explore cells vs. random exploration.

Each (cells, seed) run is an ordinary run directory under --out, so a long benchmark killed
half way is continued by running the same command again. Results are read from each run's
per-iteration metrics at the checkpoints (first row at or past each budget).

The random baseline is the same engine with returning switched off: every exploration starts
from the reset state and plays a whole game (all lives, up to the episode frame limit) with
the same repeated random actions, and the archive only records what was seen.

    python bench/montezuma.py --frames 50M --checkpoints 10M,50M --seeds 0,1,2 \
        --cells ram,ram:domain,downscale --random-frames 10M

Issue 20's protocol without domain knowledge (PROTOCOL below; bench/README.md lists what ran).
Each line is resumable: run it again, or `stepstone resume DIR --frames N` one run directory.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from stepstone.config import ExploreConfig, parse_count
from stepstone.errors import ConfigError
from stepstone.options import params as param_parser
from stepstone.runner import RunOptions, open_run, run
from stepstone.store.sqlite import RunStore
from stepstone.worker import Worker

# Issue 20, without domain knowledge, 3 seeds. "dynamic" is this checkout's (cells/dynamic.py);
# the previous dynamic cells are main's before issue 20, run from that checkout with the same
# command. `auto` is what a user gets with no --cells.
PROTOCOL = (
    # Montezuma: all 24 rooms of level 1 within 100M frames on 2 of 3 seeds, level 1 on one;
    # rooms and score at 10M, 50M, 100M beside fixed downscaled cells; downscale:clustered
    # is what Atari's defaults (--cells auto --selector auto) run.
    "python bench/montezuma.py --frames 100M --checkpoints 10M,50M,100M --seeds 0,1,2 "
    "--cells downscale,dynamic,downscale:clustered --random-frames 0 --workers 2",
    # Pitfall: best score and rooms at 50M frames, the previous defaults (downscale, count)
    # and dynamic cells vs the new defaults. One worker, as every Pitfall row in
    # bench/README.md ran.
    "python bench/montezuma.py --game pitfall --frames 50M --checkpoints 10M,50M "
    "--seeds 0,1,2 --cells downscale,dynamic,downscale:clustered --random-frames 0 --workers 1",
    # Selection (issue 20 point 3) at 50M on the default (downscaled) and dynamic cells:
    # count weights (the default before --selector auto), the released no-domain-knowledge
    # script's times-seen-only weights without and with --reset-on-update (its
    # --seen_weight=1 --reset_cell_on_update),
    # knapsack and rdd.
    *(
        f"python bench/montezuma.py --frames 50M --checkpoints 10M,20M,30M,50M --seeds 0,1,2 "
        f"--cells {c}:count,{c}:seen,{c}:knapsack,{c}:rdd --random-frames 0 --workers 2"
        for c in ("downscale", "dynamic")
    ),
    *(
        f"python bench/montezuma.py --frames 50M --checkpoints 10M,20M,30M,50M --seeds 0,1,2 "
        f"--cells {c}:seen --reset-on-update --random-frames 0 --workers 2"
        for c in ("downscale", "dynamic")
    ),
)
GAMES = {"montezuma": "ALE/MontezumaRevenge-v5", "pitfall": "ALE/Pitfall-v5"}

# The random baseline's selector, registered by its module as a user's own would be (run from
# the checkout's root; `stepstone resume` of its run directories then imports it again).
FROM_RESET = "bench.from_reset"


def config_for(
    cells: str,
    seed: int,
    death_window: int = 0,
    reset_on_update: bool = False,
    cell_params: dict | None = None,
    game: str = "montezuma",
    end_on_life_loss: bool = True,
    selector_params: dict | None = None,
    score_cells: bool = False,
) -> ExploreConfig:
    if cells == "random":
        return ExploreConfig(
            env=GAMES[game],
            cells="ram",
            seed=seed,
            selector="reset",
            imports=(FROM_RESET,),
            explore_steps=27_000,
            end_on_life_loss=False,
            batch=4,
        )
    # No ":selector" is count, the default before --selector auto (clustered on downscaled
    # frames), so that every row's command in bench/README.md still runs what it ran.
    cells, _, selector = cells.partition(":")
    return ExploreConfig(
        env=GAMES[game],
        cells=cells,
        cell_params=cell_params or {},
        seed=seed,
        selector=selector or "count",
        selector_params=selector_params or {},
        death_window=death_window,
        reset_on_update=reset_on_update,
        end_on_life_loss=end_on_life_loss,
        score_cells=score_cells,
    )


def at(history: list[dict], frames: int) -> dict | None:
    return next((m for m in history if m["frames"] >= frames), None)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--game", choices=sorted(GAMES), default="montezuma")
    ap.add_argument("--frames", default="50M")
    ap.add_argument("--checkpoints", default="10M,50M")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument(
        "--cells",
        default="ram,downscale",
        help="kinds of run, CELLS[:SELECTOR] (e.g. ram:domain); the selector defaults to count",
    )
    ap.add_argument("--random-frames", default="10M", help="budget of the random baseline")
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--death-window", type=int, default=0, help="see ExploreConfig")
    ap.add_argument("--reset-on-update", action="store_true", help="see ExploreConfig")
    ap.add_argument("--score-cells", action="store_true", help="see ExploreConfig")
    ap.add_argument(
        "--no-end-on-life-loss",
        dest="end_on_life_loss",
        action="store_false",
        help="explorations play on after a lost life, as the reference's no-domain-knowledge "
        "runs do (robustified/goexplore_py/generic_atari_env.py, MyAtari: end_on_death=False)",
    )
    ap.add_argument(
        "--cell-param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a parameter of the (non-random) cells, as in stepstone explore; repeatable",
    )
    ap.add_argument(
        "--selector-param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a parameter of the (non-random) runs' selector, as in stepstone explore; repeatable",
    )
    ap.add_argument("--out", type=Path, default=Path("bench/out/montezuma"))
    ap.add_argument("--protocol", action="store_true", help="print issue 20's commands, run none")
    ap.add_argument(
        "--report",
        action="store_true",
        help="print the table from the run directories as they are (e.g. stopped early), run none",
    )
    args = ap.parse_args()
    if args.protocol:
        print("\n".join(PROTOCOL))
        return

    budget = parse_count(args.frames)
    checkpoints = [parse_count(c) for c in args.checkpoints.split(",")]
    seeds = [int(s) for s in args.seeds.split(",")]
    plan = [(c, budget) for c in args.cells.split(",") if c]
    if parse_count(args.random_frames) > 0:
        plan.append(("random", parse_count(args.random_frames)))

    try:  # a bad --cell-param or --selector-param is refused before any run directory is written
        params = param_parser("--cell-param", "width=16")(args.cell_param)
        chosen = param_parser("--selector-param", "threshold=0.05")(args.selector_param)
        for cells, _ in plan:
            if cells != "random":
                config = config_for(
                    cells, 0, cell_params=params, game=args.game, selector_params=chosen,
                    score_cells=args.score_cells,
                )  # fmt: skip
                Worker.from_config(config).close()
    except ConfigError as e:
        ap.error(str(e))
    results = []
    for cells, frames in plan:
        for seed in seeds:
            # The options below shape Go-Explore's cells and counts; the random baseline has none.
            go = cells != "random"
            window = args.death_window if go else 0
            reset = args.reset_on_update and go
            play_on = not args.end_on_life_loss and go
            scored = args.score_cells and go
            cell_params = params if go else {}
            selector_params = chosen if go else {}
            # both kinds of parameter named, so that a name they share still tells runs apart
            given = [*cell_params.items(), *selector_params.items()]
            suffix = "".join(f"-{k}{v}" for k, v in given)
            suffix += (f"-dw{window}" if window else "") + ("-rou" if reset else "")
            suffix += ("-play-on" if play_on else "") + ("-score" if scored else "")
            game = "" if args.game == "montezuma" else f"{args.game}-"  # older names kept
            run_dir = args.out / f"{game}{cells.replace(':', '-')}{suffix}-s{seed}"
            if args.report:
                if not (run_dir / "run.sqlite").exists():
                    continue
                store = RunStore.open(run_dir)
            else:
                config = config_for(
                    cells, seed, window, reset, cell_params, args.game, not play_on,
                    selector_params, scored,
                )  # fmt: skip
                store = open_run(config, run_dir)
                stored = int(store.meta("budget", "0"))
                store.set_meta("budget", str(max(frames, stored)))  # never shrink a longer run
                if run(store, RunOptions(frames, args.workers, progress=True)).get("interrupted"):
                    store.close()  # SIGTERM or Ctrl-C stops the benchmark, not only this run
                    raise SystemExit(f"stopped; the same command continues from {run_dir}")
            history = store.metrics()
            solved = next((m["frames"] for m in history if (m["level"] or 0) >= 1), None)
            for cp in checkpoints:
                m = at(history, cp)
                if m is None:
                    continue
                # Rooms can leave the archive: an entry is replaced by a better one in its cell,
                # and a re-keying (dynamic cells) may give rooms that look alike one cell.
                peak = max(h["rooms"] or 0 for h in history if h["frames"] <= m["frames"])
                row = {"kind": cells + suffix, "seed": seed, "checkpoint": cp, "level1_at": solved,
                       "rooms_peak": peak}  # fmt: skip
                results.append({**m, **row})
            store.close()

    print(
        f"\n{'cells':<24} {'seed':>4} {'frames':>12} {'rooms':>6} {'most':>5} {'level':>6} "
        f"{'best score':>11} {'cells':>8} {'hours':>6} {'level 1 solved at':>18}"
    )
    for r in results:
        solved = f"{r['level1_at']:,}" if r["level1_at"] else "-"
        print(
            f"{r['kind']:<24} {r['seed']:>4} {r['frames']:>12,} {r['rooms'] or 0:>6} "
            f"{r['rooms_peak']:>5} "
            f"{r['level'] or 0:>6} {r['best_score']:>11g} {r['cells']:>8} "
            f"{r['seconds'] / 3600:>6.2f} {solved:>18}"
        )
    if not args.report:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "results.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
