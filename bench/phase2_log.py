"""The window's progress in robustify trainings, from their progress lines: for each log, the
training steps at which the window's top first reached each threshold, its lowest point, and
the evaluations from reset beside it (NAME.eval.txt, `stepstone evaluate` outputs).

    python bench/phase2_log.py ROOT/NAME.log ... [--marks 350,300,250,200,150,100,50,0]
    python bench/phase2_log.py ROOT/A.log ROOT/B.log --bands 5.56,6,6.5,7  (millions of steps)

``--bands`` prints instead the window top's mean and lowest point in each band of training
steps: the side-by-side view of a branch (bench/branch.py) and the training it came from.

bench/phase2_montezuma.sh writes the logs; `sh bench/phase2_montezuma.sh --report` runs this.
"""

from __future__ import annotations

import argparse
import itertools
import re
from pathlib import Path

LINE = re.compile(r"backward: ([\d.]+)([kM]?)/[\d.]+[kM]? steps, [^,]+, start (\d+)/(\d+)")
EVAL = re.compile(r"success ([\d.]+) .*mean score ([\d.]+)")
UNIT = {"": 1, "k": 1e3, "M": 1e6}


def progress(text: str) -> list[tuple[float, int]]:
    """(training steps, window top) for each progress line."""
    return [(float(m[1]) * UNIT[m[2]], int(m[3])) for m in LINE.finditer(text)]


def row(name: str, rows: list[tuple[float, int]], marks: list[int], evals: list) -> str:
    first = []
    for mark in marks:
        hit = next((steps for steps, top in rows if top <= mark), None)
        first.append(f"{hit / 1e6:.2f}M" if hit is not None else "-")
    low = min(top for _, top in rows)
    at = next(steps for steps, top in rows if top == low)
    best = max((float(s) for s, _ in evals), default=None)
    ev = f"{len(evals)} evaluations, best success {best:.2f}" if evals else "no evaluations"
    cells = [name, f"{rows[0][0] / 1e6:.2f}M-{rows[-1][0] / 1e6:.2f}M", *first,
             f"{low} ({at / 1e6:.2f}M)", str(rows[-1][1]), ev]  # fmt: skip
    return "| " + " | ".join(cells) + " |"


def bands(name: str, rows: list[tuple[float, int]], edges: list[float]) -> str:
    cells = [name]
    for lo, hi in itertools.pairwise(edges):
        tops = [top for steps, top in rows if lo <= steps < hi]
        cells.append(f"{sum(tops) / len(tops):.0f} ({min(tops)})" if tops else "-")
    return "| " + " | ".join(cells) + " |"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("logs", type=Path, nargs="+")
    ap.add_argument("--marks", default="350,300,250,200,150,100,50,0")
    ap.add_argument("--bands", help="band edges in millions of steps, comma-separated")
    args = ap.parse_args()
    if args.bands:
        edges = [float(e) * 1e6 for e in args.bands.split(",")]
        spans = [f"{a / 1e6:g}-{b / 1e6:g}M" for a, b in itertools.pairwise(edges)]
        print("| run | " + " | ".join(spans) + " |")
        print("|---" * len(edges) + "|")
        for log in args.logs:
            print(bands(log.stem, progress(log.read_text()), edges))
        return 0
    marks = [int(m) for m in args.marks.split(",")]
    print("| run | steps | " + " | ".join(f"<= {m}" for m in marks)
          + " | lowest (at) | last | from reset |")  # fmt: skip
    print("|---" * (len(marks) + 5) + "|")
    for log in args.logs:
        rows = progress(log.read_text())
        if not rows:
            print(f"| {log.stem} | no progress lines yet |")
            continue
        ev = log.with_suffix(".eval.txt")
        evals = EVAL.findall(ev.read_text()) if ev.exists() else []
        print(row(log.stem, rows, marks, evals))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
