"""Branch a robustify training: a copy of its checkpoint with some settings changed, so that
two trainings share everything up to the branch (network, optimiser, start points, random
state) and differ only in those settings from there. For side-by-side measurements of a
setting on a long training (bench/README.md), which `stepstone robustify` itself refuses to
continue with other options.

    python bench/branch.py SRC_CHECKPOINT DST_CHECKPOINT lag=50 [name=value ...]
    python bench/branch.py SRC DST --new-inputs 1 'ram="bits+score"'

Values are read as JSON (50, 0.1, "frame"); names are RobustifyConfig fields. A setting that
gives the policy more inputs (--ram) needs --new-inputs: the first layer gets that many columns
of zero weights (and zero Adam moments), so the branch starts as the same policy.
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

INPUTS = {"bits": 1024, "bits+bytes": 1152, "bits+score": 1025}  # an Atari policy's, by --ram


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("src", type=Path, help="a checkpoint-*.pt written by stepstone robustify")
    ap.add_argument("dst", type=Path, help="where the branch's checkpoint goes (not SRC)")
    ap.add_argument("settings", nargs="+", help="name=value, e.g. lag=50")
    ap.add_argument("--new-inputs", type=int, default=0, metavar="N",
                    help="inputs the changed settings append to the policy's")  # fmt: skip
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
    was = json.loads(saved["settings"]).get("ram", "bits")
    need = INPUTS.get(settings.get("ram", "bits"), 0) - INPUTS.get(was, 0)
    if args.new_inputs != max(need, 0) or need < 0:
        ap.error(f"ram {was} -> {settings.get('ram', 'bits')} adds {need} inputs to the "
                 f"policy: give --new-inputs {need}" if need >= 0 else "a branch can add "
                 "inputs to the policy, not take them away")  # fmt: skip
    saved["settings"] = json.dumps(settings)
    if args.new_inputs:
        widen(saved, args.new_inputs)
    args.dst.parent.mkdir(parents=True, exist_ok=True)
    save(args.dst, saved)
    steps = json.loads(saved["state"])["frames"]
    print(f"{args.dst}: branched at {steps:,} steps with {', '.join(args.settings)}")
    return 0


def widen(saved: dict, n: int) -> None:
    """Append ``n`` zero columns to the first layer's weights and to their Adam moments (the
    first parameter: the optimiser numbers them in the model's order)."""
    import torch

    weight = saved["model"]["body.0.weight"]
    saved["model"]["body.0.weight"] = torch.cat([weight, weight.new_zeros(weight.shape[0], n)], 1)
    moments = saved["optimizer"]["state"][0]
    for key in ("exp_avg", "exp_avg_sq"):
        moments[key] = torch.cat([moments[key], moments[key].new_zeros(weight.shape[0], n)], 1)


if __name__ == "__main__":
    sys.exit(main())
