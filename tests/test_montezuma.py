"""Short Montezuma's Revenge runs: every stored trajectory replays to its cell and score."""

from __future__ import annotations

import pytest

from stepstone.cli import main
from stepstone.config import ExploreConfig
from stepstone.replay import check
from stepstone.runner import RunOptions, open_run, run
from stepstone.store.sqlite import RunStore
from stepstone.trajectories import TrajectoryTree
from stepstone.worker import Worker


@pytest.mark.parametrize(
    ("cells", "selector", "reset"),
    [("ram", "count", False), ("downscale", "count", False), ("downscale", "seen", True)],
)
def test_every_trajectory_replays_to_its_cell_and_score(tmp_path, cells, selector, reset):
    config = ExploreConfig(
        env="montezuma", cells=cells, seed=3, selector=selector, reset_on_update=reset
    )
    store = open_run(config, tmp_path / "run")
    last = run(store, RunOptions(frames=60_000, workers=1, progress=False))
    assert last["frames"] >= 60_000
    archive = store.load_archive()
    assert len(archive) > 10
    assert archive.distinct(("level", "room")) == 1 and archive.highest("level") == 0
    # Every exploration counts the cells it visits, its findings included; with reset on
    # update, a cell added or improved starts again from 0 (engine.py).
    unseen = int((archive.times_seen[: len(archive)] == 0).sum())
    assert unseen > 0 if reset else unseen == 0

    replayed = list(
        check(Worker.from_config(config), config.seed, TrajectoryTree(store.nodes), archive)
    )
    assert len(replayed) == len(archive)
    bad = [r for r in replayed if not r.ok]
    assert not bad, f"{len(bad)} entries did not replay, first: {bad[0]}"


def test_replay_command_detects_a_tampered_trajectory(tmp_path, capsys):
    run_dir = tmp_path / "run"
    assert (
        main(
            [
                "explore",
                "montezuma",
                "--cells",
                "ram",
                "--frames",
                "30k",
                "--workers",
                "1",
                "--run-dir",
                str(run_dir),
                "--no-progress",
            ]
        )
        == 0
    )
    gif = tmp_path / "best.gif"
    assert main(["replay", str(run_dir), "--cell", "all", "--gif", str(gif)]) == 0
    assert gif.stat().st_size > 1000

    # Point the best entry at a truncated trajectory: replay must now fail with exit 1.
    store = RunStore.open(run_dir)
    archive = store.load_archive()
    i = max(range(len(archive)), key=lambda j: archive.length[j])
    with store.db:
        store.db.execute("UPDATE entries SET length = length - 5 WHERE idx = ?", (i,))
    capsys.readouterr()
    assert main(["replay", str(run_dir), "--cell", "all"]) == 1
    assert "mismatch" in capsys.readouterr().err


def test_success_is_the_first_level_completed():
    """Montezuma's goal for the report's success and frames_to_success: level 1 done."""
    from stepstone.envs.ale import RAM_LAYOUTS, AtariEnv

    env = AtariEnv("montezuma_revenge")
    env.reset(0)
    assert env.goal() is False
    env.ale.setRAM(RAM_LAYOUTS["montezuma_revenge"].level, 1)
    assert env.goal() is True
    pong = AtariEnv("pong")
    pong.reset(0)
    assert pong.goal() is None  # no layout, no goal known
    env.close()
    pong.close()


def test_a_game_without_a_rom_is_refused_by_name():
    """ale-py returns no path (with a warning) for a game it does not list."""
    from stepstone.envs.ale import AtariEnv
    from stepstone.errors import EnvironmentNotFound

    with pytest.raises(EnvironmentNotFound, match="no ROM for game 'no_such_game'"):
        AtariEnv("no_such_game")
