"""MiniGrid through the generic adapter: cells from position, direction and carried object,
or from the agent's view."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("minigrid")

from stepstone.cli import main  # noqa: E402
from stepstone.store.sqlite import RunStore  # noqa: E402


def test_doorkey_is_solved_and_trajectories_replay(tmp_path, capsys):
    run_dir = tmp_path / "run"
    args = f"explore MiniGrid-DoorKey-5x5-v0 --frames 40k --workers 1 --run-dir {run_dir}"
    assert main([*args.split(), "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["report", str(run_dir), "--json"]) == 0
    s = json.loads(capsys.readouterr().out)
    assert s["success"] and s["best_score"] > 0 and s["frames_to_success"] <= 40_000
    cells = RunStore.open(run_dir).load_archive().cells
    assert any(c[3] == ("key", "yellow") for c in cells)  # (x, y, direction, carried, doors)
    assert {c[4] for c in cells} == {0, 1}  # the door opened is a new cell
    assert main(["replay", str(run_dir), "--cell", "all"]) == 0


def test_cells_from_the_image(tmp_path, capsys):
    """--cells observation: the agent's 7x7 view (with its direction and the mission)."""
    run_dir = tmp_path / "run"
    args = "explore MiniGrid-DoorKey-5x5-v0 --cells observation --frames 40k --workers 1"
    assert main([*args.split(), "--run-dir", str(run_dir), "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["report", str(run_dir), "--json"]) == 0
    s = json.loads(capsys.readouterr().out)
    assert s["success"] and s["cells"] > 20
    image_key = dict(RunStore.open(run_dir).load_archive().cells[0])["image"]
    assert image_key[1] == (7, 7, 3)  # (dtype, shape, bytes) of the view
    assert main(["replay", str(run_dir), "--cell", "all"]) == 0
