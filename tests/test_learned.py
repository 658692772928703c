"""Learned cells: an autoencoder's code as the cell, retrained with the archive re-keyed."""

from __future__ import annotations

import json

import pytest

from stepstone.cli import main
from stepstone.store.sqlite import RunStore

pytest.importorskip("torch")


def report(run, capsys) -> dict:
    capsys.readouterr()
    assert main(["report", str(run), "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_learned_cells_retrain_rekey_replay_and_resume(tmp_path, capsys):
    run = tmp_path / "run"
    argv = ["explore", "MountainCarContinuous-v0", "--cells", "learned", "--workers", "1"]
    params = ["--cell-param", "first=1", "--cell-param", "every=2", "--cell-param", "latent=2"]
    assert main([*argv, *params, "--frames", "60k", "--run-dir", str(run), "--no-progress"]) == 0
    first = report(run, capsys)
    store = RunStore.open(run)
    versions = [m["learned_version"] for m in store.metrics()]
    cells = store.load_archive().cells
    store.close()
    assert versions[0] == 1 and versions[-1] >= 2  # trained at the first iteration, then again
    # After training, every cell is a pair of latent bins (levels 6: 0..5).
    assert all(len(c) == 2 and all(0 <= b < 6 for b in c) for c in cells)
    assert main(["replay", str(run), "--cell", "all"]) == 0

    # Resumed, the stored model keeps naming states the same way: trajectories still replay.
    assert main(["resume", str(run), "--frames", "90k", "--no-progress"]) == 0
    second = report(run, capsys)
    assert second["frames"] >= 90_000 and second["explorations"] > first["explorations"]
    assert main(["replay", str(run), "--cell", "all"]) == 0
