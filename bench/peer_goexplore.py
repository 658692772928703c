"""Go-Explore's released Phase 1 without domain knowledge, run beside ours at equal frames.

The peer is uber-research/go-explore's ``robustified/phase1_downscaled.sh`` (its
``goexplore_py/main.py`` with that script's flags: dynamic downscaling, split factor 0.125,
the first choice at 10,000 steps, times-seen weights with reset-on-update; ``--script
montezuma`` takes ``phase1_montezuma.sh``'s domain-knowledge flags instead), run from a
fetched snapshot of the repository; nothing of it is copied here. What this script adds:

- ``bench/peer/gym``, the old ``gym`` API the code calls, on ale-py;
- ``--frames`` in emulator frames as ours counts them: the peer counts steps of 4 frames
  (``frames_compute``, exploration only; a return by restoring costs nothing in either);
- at each of the peer's checkpoints (``--every``, 1M frames; its own default is 1M steps) a
  line in ``metrics.jsonl``: the rooms its archive holds (each cell's saved emulator state
  restored and the room and level bytes read from RAM: domain knowledge for the measurement
  only, as for our runs' rooms, stepstone/report.py ``places``), its cells and best score.

One process a run (``--pool_class=sync``, the peer's in-process pool): the machine has 2
cores, and runs of ours side by side have one worker each.

Needs a Python with the peer's imports: ``python -m venv /tmp/refv; /tmp/refv/bin/pip
install ale-py gymnasium opencv-python-headless loky tqdm psutil matplotlib scipy``. Then,
with REPO the directory ``fetch github:uber-research/go-explore`` gave::

    /tmp/refv/bin/python bench/peer_goexplore.py --repo REPO --frames 10M --seed 0 \\
        --out /work/runs/peer
    /tmp/refv/bin/python bench/peer_goexplore.py --report --out /work/runs/peer
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import runpy
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # stepstone's own parse_count, without installing it
from stepstone.config import parse_count  # noqa: E402
from stepstone.errors import ConfigError  # noqa: E402

# The released scripts' flags, minus what is set below (game, paths, budget, cpus):
# robustified/phase1_downscaled.sh (no domain knowledge) and phase1_montezuma.sh (the
# domain-knowledge cells of room, keys and position; a check that the stand-in runs the code
# as it ran, since that setting finds rooms within a few million frames).
SCRIPTS = {
    "downscaled": [
        "--seen_weight=1.0", "--reset_cell_on_update", "--cell_split_factor=0.125",
        "--first_compute_archive_size=1", "--first_compute_dynamic_state=10000",
        "--max_archive_size=50000", "--max_recent_frames=10000", "--recent_frame_add_prob=0.01",
        "--recompute_dynamic_state_every=10000000", "--split_iterations=3000",
        "--state_is_pixels", "--high_score_weight=0.0", "--max_hours=256", "--batch_size=100",
        "--dynamic_state",
    ],
    "montezuma": [
        "--pitfall_treasure_type=none", "--seen_weight=1", "--high_score_weight=1",
        "--horiz_weight=0.1", "--vert_weight=0", "--low_level_weight=0.1", "--remember_rooms",
        "--reset_cell_on_update", "--max_hours=256",
    ],
}  # fmt: skip
# Each game's ROM and where its RAM keeps the room and level (stepstone/envs/ale_ram.py
# RAM_LAYOUTS; Pitfall's screen byte, no level).
GAMES = {"MontezumaRevenge": ("montezuma_revenge", 3, 57), "Pitfall": ("pitfall", 1, None)}
FRAMES_PER_STEP = 4  # gym's Deterministic-v4 games


def extract(repo: Path, dest: Path) -> Path:
    """The peer's ``robustified`` folder from the snapshot (a bare git directory), unpacked
    beside and renamed into place, so that runs started together each find it whole."""
    code = dest / "robustified"
    if not code.exists():
        part = dest / f"part-{os.getpid()}"
        part.mkdir(parents=True)
        what = ["archive", "HEAD", "robustified/goexplore_py"]
        archive = subprocess.run(["git", "--git-dir", str(repo), *what], check=True,
                                 capture_output=True)  # fmt: skip
        subprocess.run(["tar", "-x", "-C", str(part)], input=archive.stdout, check=True)
        with contextlib.suppress(OSError):  # another run's copy is in place: this one goes
            (part / "robustified").rename(code)
        shutil.rmtree(part)
    return code


def measure(metrics: Path, game: str):
    """A wrapper for the peer's ``Explore.save_checkpoint`` that first writes one line of
    metrics, read from the in-memory archive (its checkpoint files drop the saved states)."""
    from ale_py import ALEInterface, LoggerMode, roms

    rom, room, level = GAMES[game]
    ALEInterface.setLoggerMode(LoggerMode.Error)
    ale = ALEInterface()
    ale.loadROM(roms.get_rom_path(rom))
    started = time.time()

    def places(cell) -> tuple[int, int]:
        if cell.restore is None:  # the start, kept without a state
            ale.reset_game()
        else:
            ale.restoreState(cell.restore[0])
        ram = ale.getRAM()
        return (int(ram[level]) if level is not None else 0), int(ram[room])

    def wrap(save):
        def save_checkpoint(self, suffix=""):
            seen = {places(c) for c in self.grid.values()}
            line = {
                "frames": FRAMES_PER_STEP * self.frames_compute,
                "cells": len(self.grid),
                "rooms": len(seen),
                "level": max(level for level, _ in seen),
                "best_score": max(c.score for c in self.grid.values()),
                "seconds": round(time.time() - started, 1),
            }
            with metrics.open("a") as f:
                f.write(json.dumps(line) + "\n")
            return save(self, suffix)

        return save_checkpoint

    return wrap


def run(args: argparse.Namespace) -> None:
    kind = args.game if args.script == "downscaled" else f"{args.game}-{args.script}"
    out = Path(args.out) / f"{kind}-s{args.seed}"
    code = extract(Path(args.repo), Path(args.out) / "code")
    sys.path[:0] = [str(code), str(HERE / "peer")]
    import goexplore_py.goexplore as ge  # the peer's module, from the snapshot

    wrap = measure(out / "metrics.jsonl", args.game)
    ge.Explore.save_checkpoint = wrap(ge.Explore.save_checkpoint)
    out.mkdir(parents=True, exist_ok=True)
    steps, every = (v // FRAMES_PER_STEP for v in (args.frames, args.every))
    game = "montezuma" if args.script == "montezuma" else f"generic_{args.game}"
    sys.argv = ["main.py", *SCRIPTS[args.script], f"--game={game}", f"--seed={args.seed}",
                f"--base_path={out}", f"--max_compute_steps={steps}",
                f"--checkpoint_compute={every}", "--n_cpus=1", "--pool_class=sync"]  # fmt: skip
    runpy.run_path(str(code / "goexplore_py" / "main.py"), run_name="__main__")


def report(args: argparse.Namespace) -> None:
    print(f"{'run':<24} {'frames':>12} {'rooms':>6} {'most':>5} {'level':>6} {'best score':>11} "
          f"{'cells':>8} {'hours':>6}")  # fmt: skip
    for metrics in sorted(Path(args.out).glob("*/metrics.jsonl")):
        most = 0
        for line in metrics.read_text().splitlines():
            m = json.loads(line)
            most = max(most, m["rooms"])
            print(f"{metrics.parent.name:<24} {m['frames']:>12,} {m['rooms']:>6} {most:>5} "
                  f"{m['level']:>6} {m['best_score']:>11,.0f} {m['cells']:>8} "
                  f"{m['seconds'] / 3600:>6.2f}")  # fmt: skip


def frames(text: str) -> int:
    try:
        return parse_count(text)
    except ConfigError as e:  # argparse says it in one line, with the option's name
        raise argparse.ArgumentTypeError(str(e)) from None


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--repo", help="the fetched uber-research/go-explore git directory")
    p.add_argument("--game", choices=sorted(GAMES), default="MontezumaRevenge")
    p.add_argument("--script", choices=sorted(SCRIPTS), default="downscaled",
                   help="the released script whose flags the run takes")  # fmt: skip
    p.add_argument("--frames", type=frames, default="10M", help="emulator frames (4 a step)")
    p.add_argument("--every", type=frames, default="1M",
                   help="frames between checkpoints (metrics lines)")  # fmt: skip
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True)
    p.add_argument("--report", action="store_true", help="print the runs' metrics and stop")
    args = p.parse_args()
    if args.report:
        report(args)
    elif not args.repo:
        p.error(
            "--repo is needed to run: the git directory fetch github:uber-research/go-explore gave"
        )
    elif subprocess.run(["git", "--git-dir", args.repo, "rev-parse", "HEAD"],
                        capture_output=True).returncode:  # fmt: skip
        p.error(
            f"--repo {args.repo} is not a git directory (fetch github:uber-research/go-explore)"
        )
    elif args.script == "montezuma" and args.game != "MontezumaRevenge":
        p.error("--script montezuma is Montezuma's Revenge's domain-knowledge script")
    else:
        run(args)


if __name__ == "__main__":
    main()
