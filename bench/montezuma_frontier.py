"""Where a Montezuma run's two-key entries stop, and what share of its choices reaches them.

Rooms 15 and 16 need two keys carried into room 17 (bench/montezuma_keys.py). This reads a
run's archive with the RAM (a diagnosis with domain knowledge that no run uses) and prints:

- for each room, its entries and the share of the next choice that the run's own selector
  gives them, split by keys held, and for a clustered run the rooms (up to four, with their
  entries) in the cluster holding most of the room's entries: look-alike rooms that the
  selector counts as one place;
- for each room of ``--route``, the (room, keys held) steps of its shortest entry's
  trajectory: the way the run found into it;
- from up to ``--entries`` of the entries holding two keys in each room of ``--from``,
  ``--walks`` random explorations each (100 actions, 95% repeats, ending at a lost life, as
  the runs explore): the (room, keys held) pairs they reach, how many lose a life, and whose
  cells (under the run's cell function) the walks pass; and where (RAM x) the room's entries
  holding 0, 1 and 2 keys lie;
- with ``--doomed N``, of N live entries drawn at random, the share that lose a life within
  40 steps whatever they do (bench/montezuma_keys.py, ``doomed``) and their share of the
  choices, and the x of each two-key entry of the rooms of ``--from``, doomed ones marked.

    python bench/montezuma_frontier.py /work/runs/p20/downscale-clustered-s{0,1,2} --walks 100
"""

from __future__ import annotations

import argparse
import collections
from pathlib import Path

import numpy as np
from montezuma_keys import ROOM, X, doomed, entry_ram, keys_held, open_archive, walks_from

from stepstone import selectors
from stepstone.errors import ConfigError
from stepstone.options import params as param_parser
from stepstone.selectors.vectors import vector
from stepstone.trajectories import TrajectoryTree


def shares(archive, rooms: np.ndarray, keys: np.ndarray, selector_name: str, params) -> np.ndarray:
    n = len(archive)
    selector = selectors.make(selector_name, **params)
    w = np.where(archive.terminal[:n], 0.0, selector.weights(archive))
    p = w / w.sum()
    cluster = getattr(selector, "cluster", None)
    named = "".join(f" {k}={v}" for k, v in params.items())
    print(f"  share of the next choice under its selector ({selector_name}{named}), by room:")
    for r in np.unique(rooms):
        at = rooms == r
        held = ", ".join(
            f"{k} keys {100 * p[at & (keys == k)].sum():.2f}%"
            for k in np.unique(keys[at])
        )  # fmt: skip
        line = f"    room {r:2d}: {at.sum():5d} entries, {100 * p[at].sum():5.2f}% ({held})"
        if cluster is not None:  # the cluster holding most of the room's entries
            main = np.bincount(cluster[:n][at]).argmax()
            mates = collections.Counter(rooms[cluster[:n] == main].tolist()).most_common(4)
            line += f"; its main cluster holds {dict(mates)}"
            # How far apart look-alike rooms are in the cells: their modal frames compared
            alike = [m for m, _ in mates if m != r]
            if alike:
                mine = modal(archive, rooms == r)
                differ = {m: int((modal(archive, rooms == m) != mine).sum()) for m in alike}
                line += f", modal frames differing in {differ} of {mine.size} pixels"
        print(line)
    return p


def modal(archive, at: np.ndarray) -> np.ndarray:
    """The most common value of each pixel over the cells ``at``: a room's frame with the
    player and moving objects mostly averaged away."""
    cells = [archive.cells[i] for i in np.flatnonzero(at)]
    if cells and isinstance(cells[0], tuple) and isinstance(cells[0][0], bytes):
        # (frame, score) keys of --score-cells: compare the frames
        cells = [frame for frame, _ in cells]
    frames = np.array([vector(c) for c in cells], dtype=np.int64)
    return np.array([np.bincount(column).argmax() for column in frames.T])


def route(store, archive, env, rooms: np.ndarray, room: int) -> None:
    at = np.flatnonzero(rooms == room)
    if not len(at):
        print(f"  room {room}: not in the archive")
        return
    i = int(at[np.argmin(archive.length[at])])
    actions = TrajectoryTree(store.nodes).actions(int(archive.node[i]), int(archive.length[i]))
    env.reset(store.config.seed)
    steps: list[tuple[int, int]] = []
    for a in actions:
        env.step(int(a))
        ram = env.ram()
        now = (int(ram[ROOM]), keys_held(ram))
        if not steps or steps[-1] != now:
            steps.append(now)
    way = " ".join(f"{r}/{k}" for r, k in steps)
    print(f"  room {room}, shortest entry ({len(actions)} steps), as room/keys: {way}")


def diagnose(
    run_dir: Path,
    ways: list[int],
    start: list[int],
    walks: int,
    most: int,
    params: dict,
    sample: int = 0,
) -> None:
    store, archive, rooms, worker = open_archive(run_dir)
    env = worker.env
    try:
        if "montezuma" not in store.config.env.lower():
            raise SystemExit(f"{run_dir} is not a Montezuma's Revenge run: give one of those")
        n = len(archive)
        keys, xs = entry_ram(archive, env, X).T
        print(f"{run_dir}: {n} entries at {store.metrics()[-1]['frames']:,} frames")
        given = {**store.config.selector_params, **params}  # --selector-param: what if
        p = shares(archive, rooms, keys, store.config.selector, given)
        if sample:
            live = np.flatnonzero(~archive.terminal[:n])
            drawn = np.random.default_rng(0).choice(live, min(sample, len(live)), replace=False)
            dead = np.array([doomed(archive, env, i) for i in drawn])
            print(
                f"  of {len(drawn)} live entries drawn, {100 * dead.mean():.1f}% lose a life "
                f"within 40 steps whatever they do; they hold "
                f"{100 * p[drawn[dead]].sum() / p[drawn].sum():.1f}% of the drawn entries' share"
            )
        for r in ways:
            route(store, archive, env, rooms, r)
        rng = np.random.default_rng(0)
        for r in start:
            two = np.flatnonzero((rooms == r) & (keys == 2))
            if not len(two):
                print(f"  room {r}: no entry holds two keys")
                continue
            span = {k: (int(xs[m].min()), int(xs[m].max()))
                    for k in range(3) if (m := (rooms == r) & (keys == k)).any()}  # fmt: skip
            print(f"  room {r}: x from, to of its entries by keys held {span}")
            if sample:
                marks = sorted((int(xs[i]), "*" if doomed(archive, env, i) else "") for i in two)
                shown = " ".join(f"{x}{d}" for x, d in marks)
                print(f"  room {r}: two-key entries' x (* a death under way): {shown}")
            if len(two) > most:
                two = np.sort(rng.choice(two, most, replace=False))
            reached, lost, landed = walks_from(
                archive, env, two, walks, rng, lambda ram: (int(ram[ROOM]), keys_held(ram)),
                lambda env, score: worker.key(worker.cell_fn(env), score), rooms,
            )  # fmt: skip
            print(
                f"  {walks * len(two)} random explorations from {len(two)} two-key entries "
                f"of room {r}: (room, keys) reached in {reached}; a life lost in {lost}; "
                f"cells passed, by holder: {landed}"
            )
    finally:
        store.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", type=Path, nargs="+")
    ap.add_argument("--route", default="17,12", help="rooms whose way in to show (comma-separated)")
    ap.add_argument(
        "--from", dest="start", default="12,13,14,21,22,23",
        help="rooms whose two-key entries to explore from (comma-separated)",
    )  # fmt: skip
    ap.add_argument("--walks", type=int, default=100, help="explorations from each entry")
    ap.add_argument("--entries", type=int, default=20, help="entries at most per room")
    ap.add_argument(
        "--selector-param", action="append", default=[], metavar="NAME=VALUE",
        help="print the shares with this parameter of the run's selector instead, e.g. "
        "by_score=true (with top=0 on a top=0.5 run); repeatable",
    )  # fmt: skip
    ap.add_argument(
        "--doomed", type=int, default=0, metavar="N",
        help="of N live entries, the share whose death is under way (and their share of the "
        "choices); marks the doomed two-key entries of --from",
    )  # fmt: skip
    args = ap.parse_args()
    if args.doomed < 0:
        raise SystemExit(f"--doomed takes a number of entries, 0 or more, not {args.doomed}")
    try:
        ways, start = ([int(r) for r in v.split(",") if r] for v in (args.route, args.start))
    except ValueError:
        raise SystemExit("--route and --from take room numbers such as 12,21") from None
    try:
        params = param_parser("--selector-param", "top=0.5")(args.selector_param)
        for run_dir in args.runs:
            diagnose(run_dir, ways, start, args.walks, args.entries, params, args.doomed)
    except ConfigError as e:  # a parameter the run's selector does not take
        raise SystemExit(str(e)) from None


if __name__ == "__main__":
    main()
