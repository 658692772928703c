"""What a Montezuma policy does where the demonstration passes twice, before and after a
reward (on the way down to the key and back up): its saved policy (D/robustify/policy.pt) on
the demonstration's states at Panama Joe's same position (RAM bytes 42 and 43, x and y) and
room (byte 3), one point before the reward and one after. Where the two rows agree, the
policy cannot tell the way there from the way back.

    python bench/phase2_alias.py D [--show 3] [--rows 8]

Each row: the point, the score there, the policy's most likely actions with their
probabilities, its value, and the action the demonstration took there; then over every pair,
how often the most likely action is the same and the mean total variation distance between
the two action distributions (0: the same, 1: nothing in common).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from phase2_probe import policy_and_demo  # noqa: E402

ROOM, X, Y = 3, 42, 43  # Montezuma's RAM
NAMES = ["NOOP", "FIRE", "UP", "RIGHT", "LEFT", "DOWN", "UR", "UL", "DR", "DL", "UF", "RF",
         "LF", "DF", "URF", "ULF", "DRF", "DLF"]  # fmt: skip


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("--show", type=int, default=3, help="most likely actions shown")
    ap.add_argument("--rows", type=int, default=8, help="pairs printed, spread over the path")
    ap.add_argument("--reward", type=int, default=1, help="which reward divides the path (1st)")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(1)
    model, info, runner, demo = policy_and_demo(args.run_dir, 0.0, 0)
    places = []
    for snap in demo.snapshots:
        runner.env.restore(snap)
        places.append(tuple(int(v) for v in runner.env.ram()[[ROOM, X, Y]]))
    at = np.flatnonzero(np.diff(demo.returns))[args.reward - 1] + 1  # first point after it
    print(f"{args.run_dir}: the policy after {info['frames']:,} training steps "
          f"({info['features']}); reward {args.reward} at point {at}")  # fmt: skip
    later = {}
    for t in range(at, len(places)):
        later.setdefault(places[t], t)
    with torch.no_grad():
        logits, values = model(torch.as_tensor(np.stack(demo.observations)))
        probs = torch.softmax(logits, -1).numpy()
    pairs = [(t, later[places[t]]) for t in range(at) if places[t] in later]
    agree, tv = 0, []
    shown_pairs = set(np.linspace(0, len(pairs) - 1, min(args.rows, len(pairs))).astype(int))
    for i, (before, after) in enumerate(pairs):
        agree += int(np.argmax(probs[before]) == np.argmax(probs[after]))
        tv.append(0.5 * np.abs(probs[before] - probs[after]).sum())
        if i not in shown_pairs:
            continue
        for t in (before, after):
            top = np.argsort(probs[t])[::-1][: args.show]
            shown = " ".join(f"{NAMES[a]} {probs[t][a]:.2f}" for a in top)
            took = NAMES[int(demo.actions[t])] if t < len(demo.actions) else "-"
            print(f"  {t:4d} score {demo.returns[t]:5g} x {places[t][1]:3d} y {places[t][2]:3d}: "
                  f"{shown}  value {values[t]:.2f}  took {took}")  # fmt: skip
        print()
    print(f"{len(pairs)} places passed before and after: the most likely action the same at "
          f"{agree}, total variation {np.mean(tv):.2f} on average")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
