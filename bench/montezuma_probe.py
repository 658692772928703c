"""Where a Montezuma's Revenge archive is stuck: keys held per room, and what fresh explorations
from chosen cells do.

Reads a run directory made with RAM cells (level, room, keys, x bin, y bin) and prints

- for each room, the key counts its cells hold (the way to the end of level 1 needs two keys
  in room 17, so this shows how far a second key has travelled);
- with --room R, the x bins of room R's cells by keys held (where in room 12 the carriers of
  one or two keys have stood);
- for each --cell given, N explorations from that cell's stored state, made as the engine
  makes them (random actions repeated with probability 0.95, 100 steps, ended by a lost
  life): how far left and right they got, where they died, which rooms they left to and
  which rewards they collected;
- with --route, the way the shortest trajectory into the highest level found goes: room,
  keys held and score at every change, replayed from reset;
- with --hazards CELL, where in that cell's room a standing agent dies and when: from the
  cell's state, the agent is put at each x (its RAM byte overwritten) and left idle, which
  maps lethal x ranges (room 12's laser beams), and put at the first lethal x after k idle
  steps, which shows the hazard's on/off cycle.

    python bench/montezuma_probe.py bench/out/montezuma/ram-domain-s0 \
        --cell 0,17,2,17,15 --cell 0,12,6,15,14 --explorations 600
"""

from __future__ import annotations

import argparse
import collections
from pathlib import Path

import numpy as np

from stepstone.envs.ale import AtariEnv
from stepstone.explorers.random_repeat import RandomRepeat
from stepstone.store.sqlite import RunStore
from stepstone.trajectories import TrajectoryTree


def keys_by_room(cells: list[tuple]) -> dict[int, list[int]]:
    held = collections.defaultdict(set)
    for _level, room, objects, _x, _y in cells:
        held[room].add(bin(objects).count("1"))
    return {room: sorted(k) for room, k in sorted(held.items())}


def x_bins(cells: list[tuple], room: int) -> dict[int, list[int]]:
    bins = collections.defaultdict(set)
    for _level, r, objects, x, _y in cells:
        if r == room:
            bins[bin(objects).count("1")].add(x)
    return {keys: sorted(b) for keys, b in sorted(bins.items())}


def probe(env: AtariEnv, snapshot: bytes, room: int, n: int, seed: int) -> dict:
    lay = env.layout
    explorer = RandomRepeat(0.95)
    rng = np.random.default_rng(seed)
    out: dict[str, collections.Counter] = {
        k: collections.Counter() for k in ("min_x", "max_x", "died_at_x", "left_to", "rewards")
    }
    for _ in range(n):
        env.restore(snapshot)
        lives, xs = env.lives(), []
        for action in explorer.actions(env, rng, 100):
            reward, over, _ = env.step(int(action))
            ram = env.ram()
            if int(ram[lay.room]) != room:
                out["left_to"][int(ram[lay.room])] += 1
                break
            xs.append(int(ram[lay.x]))
            if reward:
                out["rewards"][(reward, xs[-1])] += 1
            if env.lives() < lives or over:
                out["died_at_x"][xs[-1] // 8 * 8] += 1
                break
        if xs:
            out["min_x"][min(xs) // 8 * 8] += 1
            out["max_x"][max(xs) // 8 * 8] += 1
    return out


def route(env: AtariEnv, store: RunStore, archive) -> list[tuple[int, int, int, float]]:
    """(step, room, keys, score) at each change along the shortest path into the top level."""
    lay = env.layout
    top = max(c[0] for c in archive.cells)
    i = min(
        (j for j, c in enumerate(archive.cells) if c[0] == top), key=lambda j: archive.length[j]
    )
    actions = TrajectoryTree(store.nodes).actions(int(archive.node[i]), int(archive.length[i]))
    env.reset(store.config.seed)
    score, last, out = 0.0, None, []
    for t, action in enumerate(actions):
        score += env.step(int(action))[0]
        ram = env.ram()
        now = (int(ram[lay.room]), bin(int(ram[lay.objects]) & lay.key_mask).count("1"))
        if now != last:
            out.append((t, *now, score))
            last = now
    return out


def parse_cell(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in text.split(","))
    except ValueError:
        raise SystemExit(
            f"a cell is LEVEL,ROOM,OBJECTS,XBIN,YBIN (integers), not {text!r}"
        ) from None


def snapshot_of(archive, cell: tuple[int, ...]) -> bytes:
    if archive.get(cell) is None:
        raise SystemExit(f"cell {cell} is not in the archive")
    return archive.snapshots[int(archive.snap[archive.index[cell]])]


IDLE = 40  # steps a put agent stands still: longer than a hazard's off phase


def hazards(env: AtariEnv, snapshot: bytes, idle: int) -> tuple[str, str]:
    """Lethal x (one character per pixel from 0, "D" lethal) and the on/off cycle ("L" when
    standing at the first lethal x kills at once, one character per step from the state)."""
    lay = env.layout

    def dies(x: int, wait: int, steps: int) -> bool:
        env.restore(snapshot)
        for _ in range(wait):
            env.step(0)
        lives = env.lives()
        env.ale.setRAM(lay.x, x)
        for _ in range(steps):
            env.step(0)
        return env.lives() < lives

    lethal = "".join("D" if dies(x, 0, idle) else "." for x in range(160))
    first = lethal.find("D")
    cycle = "".join("L" if dies(first, k, 1) else "_" for k in range(96)) if first >= 0 else ""
    return lethal, cycle


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("--cell", action="append", default=[], help="LEVEL,ROOM,OBJECTS,XBIN,YBIN")
    ap.add_argument("--explorations", type=int, default=500)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--route", action="store_true", help="the way into the highest level found")
    ap.add_argument("--room", type=int, help="x bins of this room's cells, by keys held")
    ap.add_argument("--hazards", metavar="CELL", help="lethal x and their cycle in CELL's room")
    args = ap.parse_args()

    store = RunStore.open(args.run_dir)
    archive = store.load_archive()
    print(f"{args.run_dir}: {len(archive)} cells, frames {store.state().get('frames', 0):,}")
    print("keys held, by room:", keys_by_room(archive.cells))
    env = AtariEnv("montezuma_revenge")
    env.reset(store.config.seed)
    if args.room is not None:
        print(f"x bins in room {args.room}, by keys held:", x_bins(archive.cells, args.room))
    if args.route:
        print("route (step, room, keys, score):", route(env, store, archive))
    if args.hazards:
        lethal, cycle = hazards(env, snapshot_of(archive, parse_cell(args.hazards)), IDLE)
        print(f"\nlethal x when idle {IDLE} steps (D), 40 pixels a line from x = 0:")
        for x in range(0, 160, 40):
            print(f"  {x:>3} {lethal[x : x + 40]}")
        print(f"at the first lethal x after k idle steps, k = 0..95 (L: killed): {cycle}")
    for text in args.cell:
        cell = parse_cell(text)
        result = probe(env, snapshot_of(archive, cell), cell[1], args.explorations, args.seed)
        entry = archive.get(cell)
        print(
            f"\ncell {cell} (score {entry.score:g}, chosen {entry.times_chosen} times), "
            f"{args.explorations} explorations; x in pixels, binned by 8:"
        )
        for key, counts in result.items():
            print(f"  {key:<10} {sorted(counts.items())}")


if __name__ == "__main__":
    main()
