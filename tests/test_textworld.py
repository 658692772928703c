"""TextWorld games generated here with tw-make: explored to the win, replayed command by command."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from stepstone.cli import main
from stepstone.envs import EnvSpec, make

pytest.importorskip("textworld")


@pytest.fixture(scope="module")
def games(tmp_path_factory) -> dict[str, Path]:
    """A treasure hunter, a coin collector and a cooking game, made offline by tw-make."""
    out = tmp_path_factory.mktemp("games")
    tw_make = shutil.which("tw-make") or str(Path(__import__("sys").executable).parent / "tw-make")
    recipes = {
        "treasure": ["tw-treasure_hunter", "--level", "5"],
        "coin": ["tw-coin_collector", "--level", "5"],
        "cooking": ["tw-cooking", "--recipe", "1", "--take", "1", "--go", "1"],
    }
    paths = {}
    for name, args in recipes.items():
        path = out / f"{name}.z8"
        subprocess.run([tw_make, *args, "--seed", "1", "--output", str(path), "-f"], check=True)
        paths[name] = path
    return paths


def test_actions_are_admissible_commands_and_cells_are_room_and_inventory(games):
    env = make(EnvSpec(f"textworld:{games['treasure']}"))
    assert env.method == "replay"  # the game cannot be pickled; it is deterministic
    first = env.observe()
    assert first.startswith("room: ") and "| inventory: You are carrying nothing." in first
    commands = env.env.unwrapped._state["admissible_commands"]
    env.step(len(commands) + 1)  # actions wrap around the list of admissible commands
    assert env.info["command"] == commands[1]
    snap, obs = env.snapshot(), env.observe()
    env.step(1)
    env.restore(snap)
    assert env.observe() == obs


@pytest.mark.parametrize("game", ["treasure", "coin"])
def test_explore_wins_and_every_trajectory_replays(game, games, tmp_path, capsys):
    run = tmp_path / "run"
    argv = ["explore", f"textworld:{games[game]}", "--frames", "4k", "--workers", "1"]
    assert main([*argv, "--run-dir", str(run), "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["report", str(run), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["success"] is True and summary["best_score"] >= 1
    assert 0 < summary["frames_to_success"] <= summary["frames"]
    assert main(["replay", str(run), "--cell", "all"]) == 0


def test_cooking_game_explores_and_replays(games, tmp_path, capsys):
    """The cooking game is longer (read the cookbook, take, prepare, eat): here only that its
    commands, cells and replays work; solving it is the selectors benchmark's business."""
    run = tmp_path / "run"
    argv = ["explore", f"textworld:{games['cooking']}", "--frames", "1500", "--workers", "1"]
    assert main([*argv, "--run-dir", str(run), "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["report", str(run), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["cells"] > 3
    assert main(["replay", str(run), "--cell", "all"]) == 0
