"""The window's progress in robustify trainings, from their progress lines: for each log, the
training steps at which the window's top first reached each threshold, its lowest point, and
the evaluations from reset beside it (NAME.eval.txt, `stepstone evaluate` outputs).

    python bench/phase2_log.py ROOT/NAME.log ... [--marks 350,300,250,200,150,100,50,0]

bench/phase2_montezuma.sh writes the logs; `sh bench/phase2_montezuma.sh --report` runs this.
"""

from __future__ import annotations

import argparse
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


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("logs", type=Path, nargs="+")
    ap.add_argument("--marks", default="350,300,250,200,150,100,50,0")
    args = ap.parse_args()
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
