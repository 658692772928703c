"""Why Montezuma runs without domain knowledge stop short of rooms 15 and 16: a diagnosis.

Reads each run directory's archive, restores its entries and reads the RAM (room byte 3, x
byte 42, inventory byte 65 with keys in bits 1-3; envs/ale_ram.py). Nothing here is part of a
run: it says what the archive holds, not how it was found.

    python bench/montezuma_keys.py /work/runs/p20/downscale-clustered-s{0,1,2} --walks 300

For each run: the keys held by its room-17 entries and where the entries holding two or more
keys are; from its first room-17 entry, walking left (action 4) with 0, 1 and 2 keys put in
the inventory (where the player stops, which rooms it reaches); the brightest 11 x 8 block
of the inventory row (the second) and below it in that dark room (before 2026-12-05 one
number, from the second row down); and ``--walks`` random explorations (100 actions,
95% repeats, ending at a lost life, as the runs explore) from each room-17 entry.
"""

from __future__ import annotations

import argparse
import collections
from pathlib import Path
from typing import Any

import numpy as np

from stepstone.cells.base import grayscale
from stepstone.cells.downscale import Downscale
from stepstone.selectors import CountBased
from stepstone.store.sqlite import RunStore
from stepstone.worker import Worker

ROOM, X, INVENTORY, KEYS, LEFT = 3, 42, 65, 0b1110, 4
STEPS, REPEAT = 100, 0.95  # the runs' explorations (config.py: explore_steps, repeat_prob)


def keys_held(ram: np.ndarray) -> int:
    return bin(int(ram[INVENTORY]) & KEYS).count("1")


def open_archive(run_dir: Path) -> tuple[RunStore, Any, np.ndarray, Worker]:
    """The run's store, its archive, each entry's room and the run's worker, whose
    environment restores them and whose cell function keys them (bench/montezuma_levels.py
    and bench/montezuma_frontier.py use it too)."""
    store = RunStore.open(run_dir)
    archive = store.load_engine(CountBased()).archive
    rooms = archive.metric("room")
    if rooms is None:
        store.close()
        raise SystemExit(f"{run_dir} has no room metric: give a Montezuma or Pitfall run")
    return store, archive, np.asarray(rooms)[: len(archive)], Worker.from_config(store.config)


def entry_ram(archive, env, *addresses: int) -> np.ndarray:
    """Each entry's keys held and RAM bytes at ``addresses``: one row per entry."""
    out = np.zeros((len(archive), 1 + len(addresses)), dtype=np.int64)
    for i in range(len(archive)):
        env.restore(archive.snapshots[int(archive.snap[i])])
        env.step(0)  # a restored state has no screen or fresh RAM view until a step
        ram = env.ram()
        out[i] = [keys_held(ram), *(ram[a] for a in addresses)]
    return out


def doomed(archive, env, i: int, steps: int = 40) -> bool:
    """Whether entry ``i`` loses a life within ``steps`` whatever it does (idle, up, right or
    left held): a frame of a death under way, which the game has not yet counted."""
    for action in (0, 2, 3, 4):
        env.restore(archive.snapshots[int(archive.snap[i])])
        lives = env.lives()
        for _ in range(steps):
            env.step(action)
            if env.lives() < lives:
                break
        else:
            return False  # alive after `steps` of this action
    return True


def walks_from(archive, env, entries, walks: int, rng, what, key=None, rooms=None):
    """``walks`` random explorations from each of ``entries`` as the runs explore (a lost
    life ends one): how many reach each value of ``what(ram)``, how many lose a life, and
    with ``key`` (the cell key of the environment's state and the walk's score, as
    ``Worker.key`` makes it) and ``rooms`` where the cells they pass stand in the archive: new to
    it, held by an entry of the room the walk is in or by a look-alike of another room, and
    whether the walk's score was higher, so that it would take the cell (bench/
    montezuma_frontier.py)."""
    index = {c: j for j, c in enumerate(archive.cells[: len(archive)])}
    reached, landed, lost = collections.Counter(), collections.Counter(), 0
    for i in entries:
        for _ in range(walks):
            env.restore(archive.snapshots[int(archive.snap[i])])
            lives, action, seen = env.lives(), 0, set()
            score, last = float(archive.score[i]), archive.cells[i]
            for t in range(STEPS):
                if t == 0 or rng.random() > REPEAT:
                    action = int(rng.integers(18))
                score += env.step(action)[0]
                ram = env.ram()
                seen.add(what(ram))
                if env.lives() < lives:
                    lost += 1
                    break
                if key is not None and (cell := key(env, score)) != last:
                    last, j = cell, index.get(cell)
                    if j is None:
                        landed["new to the archive"] += 1
                        continue
                    here = int(ram[ROOM])
                    owner = "its room" if rooms[j] == here else f"in {here} held by {rooms[j]}"
                    landed[f"{owner}{', walk higher' if score > archive.score[j] else ''}"] += 1
            reached.update(seen)
    return dict(sorted(reached.items())), lost, dict(landed.most_common())


def diagnose(run_dir: Path, room: int, walks: int) -> None:
    store, archive, rooms, worker = open_archive(run_dir)
    env = worker.env
    n = len(archive)
    if "montezuma" not in store.config.env.lower():
        store.close()
        raise SystemExit(f"{run_dir} is not a Montezuma's Revenge run: give one of those")
    ale = env.ale

    def restore(i: int) -> None:
        env.restore(archive.snapshots[int(archive.snap[i])])

    keys = entry_ram(archive, env)[:, 0]
    held = dict(collections.Counter(sorted(keys[rooms == room].tolist())))
    where = dict(collections.Counter(sorted(rooms[keys >= 2].tolist())))
    print(f"{run_dir}: {n} entries at {store.metrics()[-1]['frames']:,} frames")
    print(f"  room-{room} entries by keys held: {held}")
    print(f"  entries holding 2+ keys, by room: {where} ({sum(where.values())})")
    entries = np.flatnonzero(rooms == room)
    if not len(entries):
        store.close()
        return
    shrink = Downscale().shrink
    for inventory, name in ((0, "no key"), (2, "one key"), (6, "two keys")):
        restore(int(entries[0]))
        ale.setRAM(INVENTORY, inventory)
        seen, xs, dark = set(), [], 0.0
        for t in range(200):
            env.step(LEFT)
            ram = env.ram()
            seen.add(int(ram[ROOM]))
            xs.append(int(ram[X]))
            if t == 5:
                blocks = shrink(grayscale(env))
                dark, held = float(blocks[2:].max()), float(blocks[1].max())
        print(f"  walking left with {name}: rooms {sorted(seen)}, x from {xs[0]} to "
              f"{min(xs)}; at step 5 the brightest block below the inventory row is "
              f"{dark:.1f} of 256, of the inventory row {held:.1f} (the first of 8 "
              "levels starts at 32)")  # fmt: skip
    rng = np.random.default_rng(0)
    reached, lost, _ = walks_from(archive, env, entries, walks, rng, lambda ram: int(ram[ROOM]))
    print(f"  {walks * len(entries)} random explorations from its {len(entries)} room-{room} "
          f"entries: rooms reached {reached}, a life lost in {lost}")  # fmt: skip
    store.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", type=Path, nargs="+")
    ap.add_argument("--room", type=int, default=17)
    ap.add_argument("--walks", type=int, default=300)
    args = ap.parse_args()
    for run_dir in args.runs:
        diagnose(run_dir, args.room, args.walks)


if __name__ == "__main__":
    main()
