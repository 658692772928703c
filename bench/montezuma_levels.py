"""How an archive's frames split under other downscaling levels: a check before a long run.

Restores every entry of a run directory's archive, shrinks its frame to 11 x 8 (cells/
downscale.py) and counts the distinct cells under each (levels, gamma) given, in all and in
one room (room byte 3 of the RAM, envs/ale_ram.py; reporting only). A dark room whose
positions are one cell under even levels (bench/montezuma_keys.py) shows here as a room
whose entries collapse to few cells; a representation that splits everything shows as
many more cells than entries' rooms need.

    python bench/montezuma_levels.py /work/runs/p20/downscale-clustered-s0 \
        --levels 8:1,16:1,8:0.5,6:0.5,5:0.5,4:0.5

A restored state shows its frame after one more step (the emulator keeps no screen in a
snapshot), so the counts are of the frames one step on, not of the keys the run stored.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from montezuma_keys import open_archive

from stepstone.cells.base import grayscale
from stepstone.cells.downscale import Downscale


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", type=Path)
    ap.add_argument("--levels", default="8:1,8:0.5,5:0.5", help="LEVELS:GAMMA pairs")
    ap.add_argument("--room", type=int, default=17)
    args = ap.parse_args()
    try:
        pairs = [v.split(":") for v in args.levels.split(",")]
        variants = [Downscale(levels=int(lv), gamma=float(g)) for lv, g in pairs]
    except ValueError as e:
        raise SystemExit(f"--levels takes LEVELS:GAMMA pairs such as 8:1,5:0.5 ({e})") from e
    store, archive, rooms, worker = open_archive(args.run)
    env = worker.env
    n = len(archive)
    frames = []
    for i in range(n):
        env.restore(archive.snapshots[int(archive.snap[i])])
        env.step(0)
        frames.append(grayscale(env).copy())
    store.close()
    in_room = rooms == args.room
    print(f"{args.run}: {n} entries, {int(in_room.sum())} in room {args.room}")
    for d in variants:
        keys = np.array([d.key_of(f) for f in frames], dtype=object)
        print(f"  levels {d.levels}, gamma {d.gamma}: {len(set(keys))} cells, "
              f"{len(set(keys[in_room]))} in room {args.room}")  # fmt: skip


if __name__ == "__main__":
    main()
