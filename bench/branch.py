"""Branch a robustify training: a copy of its checkpoint with some settings changed, so that
two trainings share everything up to the branch (network, optimiser, start points, random
state) and differ only in those settings from there. For side-by-side measurements of a
setting on a long training (bench/README.md), which `stepstone robustify` itself refuses to
continue with other options.

    python bench/branch.py SRC_CHECKPOINT DST_CHECKPOINT lag=50 [name=value ...]

Values are read as JSON (50, 0.1, "frame"); names are RobustifyConfig fields.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import fields
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from stepstone.learn.checkpoint import load, save  # noqa: E402
from stepstone.learn.robustify import RobustifyConfig  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("src", type=Path, help="a checkpoint-*.pt written by stepstone robustify")
    ap.add_argument("dst", type=Path, help="where the branch's checkpoint goes (not SRC)")
    ap.add_argument("settings", nargs="+", help="name=value, e.g. lag=50")
    args = ap.parse_args()
    if args.dst.resolve() == args.src.resolve():
        ap.error("DST must differ from SRC: a branch keeps the training it came from")
    known = {f.name for f in fields(RobustifyConfig)}
    saved = load(args.src, "a checkpoint written by stepstone robustify")
    settings = json.loads(saved["settings"])
    for item in args.settings:
        name, sep, text = item.partition("=")
        if not sep or name not in known:
            ap.error(f"{item!r}: give name=value with a RobustifyConfig field as the name")
        try:
            settings[name] = json.loads(text)
        except ValueError:
            ap.error(f'{item!r}: the value is JSON (50, 0.1, "frame"), not {text!r}')
    saved["settings"] = json.dumps(settings)
    args.dst.parent.mkdir(parents=True, exist_ok=True)
    save(args.dst, saved)
    steps = json.loads(saved["state"])["frames"]
    print(f"{args.dst}: branched at {steps:,} steps with {', '.join(args.settings)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
