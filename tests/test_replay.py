"""`stepstone replay --gif`: frames drawn by the environment, one per step of the trajectory."""

from __future__ import annotations

import pytest
from PIL import Image

from stepstone.cli import main
from stepstone.store.sqlite import RunStore
from stepstone.trajectories import TrajectoryTree


def explore(tmp_path, env: str, frames: str, capsys, *extra: str) -> str:
    run = str(tmp_path / "run")
    args = ["explore", env, "--frames", frames, "--workers", "1", "--run-dir", run, *extra]
    assert main([*args, "--no-progress"]) == 0
    capsys.readouterr()
    return run


def best_length(run: str) -> int:
    store = RunStore.open(run)
    archive = store.load_archive()
    best = archive.entry(archive.best())
    return len(TrajectoryTree(store.nodes).actions(best.node, best.length))


@pytest.mark.parametrize(
    ("env", "size"),
    [
        ("FrozenLake-v1", (256, 256)),  # an integer observation; 4x4 tiles of 64 pixels
        ("MiniGrid-Empty-5x5-v0", (160, 160)),  # a dict observation; 5x5 tiles of 32
        ("BabyAI-GoToRedBallNoDists-v0", (256, 256)),  # 8x8 tiles of 32
        ("CartPole-v1", (600, 400)),  # four floats; gymnasium's 600x400 screen
    ],
)
def test_gif_is_drawn_by_the_environment_one_frame_per_step(tmp_path, capsys, env, size):
    if env.startswith(("MiniGrid", "BabyAI")):
        pytest.importorskip("minigrid")
    pytest.importorskip("pygame")
    run = explore(tmp_path, env, "3k", capsys)
    length = best_length(run)
    assert length > 0
    gif = tmp_path / "best.gif"
    assert main(["replay", run, "--gif", str(gif)]) == 0
    assert f"({length + 1} frames of {size[0]}x{size[1]})" in capsys.readouterr().out
    with Image.open(gif) as im:
        assert im.size == size
        # Pillow merges a frame equal to the previous one into it, adding its duration: the
        # time shown is still one 40 ms step for the reset and for each action.
        durations = []
        for i in range(im.n_frames):
            im.seek(i)
            durations.append(im.info["duration"])
            assert len(im.convert("RGB").getcolors(maxcolors=1 << 16)) > 1  # not a blank frame
    assert sum(durations) == 40 * (length + 1)


def test_an_environment_that_cannot_draw_says_so_in_one_line(tmp_path, capsys, user_env_module):
    run = explore(tmp_path, "UserCorridor-v0", "1k", capsys, "--import", user_env_module)
    gif = tmp_path / "best.gif"
    assert main(["replay", run, "--gif", str(gif)]) == 2
    out, err = capsys.readouterr()
    assert "replayed to their cells" in out  # the check itself ran and passed
    assert err.count("\n") == 1 and "cannot draw frames" in err and "without --gif" in err
    assert not gif.exists()


def test_a_text_game_cannot_draw(tmp_path, capsys):
    run = explore(tmp_path, "game24:4,7,8,8", "500", capsys)
    assert main(["replay", run, "--gif", str(tmp_path / "g.gif")]) == 2
    assert "game24:4,7,8,8 cannot draw frames" in capsys.readouterr().err


def test_a_gif_or_page_path_that_cannot_be_written_is_said_before_the_work(tmp_path, capsys):
    """A --gif or --out in a missing directory was a FileNotFoundError traceback once the
    frames were drawn or the page rendered."""
    run = explore(tmp_path, "CartPole-v1", "500", capsys)
    missing = tmp_path / "no" / "such"
    for args in (["replay", run, "--gif", str(missing / "b.gif")],
                 ["evaluate", run, "--gif", str(missing / "e.gif")],
                 ["view", run, "--out", str(missing / "v.html")]):  # fmt: skip
        assert main(args) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and f"{missing} is not a directory" in err
    assert main(["replay", run, "--gif", str(tmp_path)]) == 2
    assert f"--gif {tmp_path} is a directory" in capsys.readouterr().err
    for command in ("replay", "evaluate"):  # a GIF under another name opened as nothing
        assert main([command, run, "--gif", str(tmp_path / "x.png")]) == 2
        assert f"name it {tmp_path / 'x.gif'}" in capsys.readouterr().err
