"""Our dynamic-downscaling shape search against the reference's, on the same frames of a run.

``DynamicDownscale.choose`` departs from the released code in two ways (see its module): 300
iterations instead of ``split_iterations`` 3,000, and it starts from the current shape where
the reference starts from a random one (robustified/goexplore_py/goexplore.py,
``Explore.try_split_frames``). This script runs both on one sample of a run's frames (the
sources of its archive's entries and of those set aside) and prints, for each, the shape, its
score, the cells it makes of the sample, its seconds, and what a re-key to that shape would keep
of a Montezuma or Pitfall run: the rooms of the entries that win a cell, against the rooms of
all entries.

    python bench/shape_search.py /work/runs/p22/dynamic-s0 --sample 2000 --seeds 0,1,2
"""

from __future__ import annotations

import argparse
import time
from collections import Counter
from pathlib import Path

import numpy as np

from stepstone.archive import better
from stepstone.cells.downscale import Downscale
from stepstone.cells.dynamic import DynamicDownscale, decode_frame, score
from stepstone.selectors import CountBased
from stepstone.store.sqlite import RunStore


def entries(run_dir: Path) -> tuple[list[np.ndarray], dict[str, np.ndarray], tuple]:
    """Every entry's frame (archive and set aside), its columns and the run's current shape."""
    store = RunStore.open(run_dir)
    try:
        engine = store.load_engine(CountBased())
        archive = engine.archive
        n, r = len(archive), archive.retired
        cols = {
            name: np.concatenate([getattr(archive, name)[:n], r.columns[name]])
            for name in ("snap", "score", "length", "goal")
        }
        rooms = archive.metric("room")
        cols["room"] = (
            np.concatenate([np.asarray(rooms)[:n], r.metrics["room"]])
            if rooms is not None
            else np.full(len(cols["snap"]), -1)
        )
        have = np.array([int(s) in archive.sources for s in cols["snap"]], dtype=bool)
        cols = {k: v[have] for k, v in cols.items()}
        frames = [decode_frame(archive.sources[int(s)]) for s in cols["snap"]]
        return frames, cols, tuple(engine.cell_shape)
    finally:
        store.close()


def rooms_kept(shape: tuple[int, int, int], frames, cols) -> tuple[int, int]:
    """Rooms of the entries that win their cell when every entry is re-keyed to ``shape``
    (Archive.rekey's rule: higher score, then shorter), and the number of cells."""
    down = Downscale(*shape)
    winner: dict[bytes, int] = {}
    s, ln, g = cols["score"], cols["length"], cols["goal"]
    for i, f in enumerate(frames):
        k = down.key_of(f)
        w = winner.setdefault(k, i)
        if w != i and better(s[i], ln[i], s[w], ln[w], bool(g[i]), bool(g[w])):
            winner[k] = i
    return len({int(cols["room"][i]) for i in winner.values()}), len(winner)


def reference_start(rng: np.random.Generator, h: int, w: int) -> tuple[int, int, int]:
    """try_split_frames' first candidate: width, height and levels uniform in their ranges."""
    return int(rng.integers(1, w)), int(rng.integers(1, h)), int(rng.integers(2, 256))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("run_dirs", nargs="+", type=Path)
    ap.add_argument("--sample", type=int, default=2000, help="frames the searches see")
    ap.add_argument("--seeds", default="0", help="search seeds, comma-separated")
    ap.add_argument("--ours", type=int, default=300, help="our iterations")
    ap.add_argument("--reference", type=int, default=3000, help="the reference's iterations")
    args = ap.parse_args()
    print(
        f"{'run':<22}{'seed':>5}  {'search':<20}{'shape':>13}{'score':>7}{'cells':>7}"
        f"{'seconds':>9}{'rooms kept':>12}{'cells (all)':>13}"
    )
    for run_dir in args.run_dirs:
        frames, cols, current = entries(run_dir)
        all_rooms = len(set(cols["room"].tolist()))
        for seed in (int(s) for s in args.seeds.split(",")):
            rng = np.random.default_rng(seed)
            pick = rng.choice(len(frames), size=min(args.sample, len(frames)), replace=False)
            sample = [frames[i] for i in pick]
            h, w = sample[0].shape
            rows = [("current", current, 0)]
            rows.append((f"ours ({args.ours})", current, args.ours))
            start = reference_start(rng, h, w)
            rows.append((f"reference ({args.reference})", start, args.reference))
            for name, shape, iterations in rows:
                t = time.perf_counter()
                cells = DynamicDownscale(*shape, iterations=max(iterations, 1))
                chosen = cells.choose(sample, rng) if iterations else tuple(shape)
                seconds = time.perf_counter() - t
                down = Downscale(*chosen)
                counts = Counter(down.key_of(f) for f in sample)
                sc = score(np.fromiter(counts.values(), float), cells.split_factor * len(sample))
                kept, n_cells = rooms_kept(chosen, frames, cols)
                print(
                    f"{run_dir.name:<22}{seed:>5}  {name:<20}"
                    f"{'x'.join(map(str, chosen)):>13}{sc:>7.3f}{len(counts):>7}"
                    f"{seconds:>9.1f}{f'{kept}/{all_rooms}':>12}{n_cells:>13}",
                    flush=True,
                )


if __name__ == "__main__":
    main()
