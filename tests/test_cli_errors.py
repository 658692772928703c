"""Bad input: one line on stderr naming the problem, exit code 2, nothing overwritten."""

from __future__ import annotations

import pytest

from stepstone.cli import main


def run_cli(capsys, *args: str) -> tuple[int, str]:
    code = main(list(args))
    err = capsys.readouterr().err.strip()
    return code, err


def one_line(err: str) -> str:
    assert len(err.splitlines()) == 1, err
    return err


def test_unknown_environment(capsys, tmp_path):
    code, err = run_cli(
        capsys,
        "explore",
        "ALE/MontezumaRevenj-v5",
        "--run-dir",
        str(tmp_path / "r"),
        "--no-progress",
    )
    assert code == 2
    assert "unknown environment id" in one_line(err)
    assert "ALE/MontezumaRevenge-v5" in err  # the suggestion
    assert not (tmp_path / "r").exists()


def test_unknown_cell_kind(capsys, tmp_path):
    code, err = run_cli(
        capsys, "explore", "montezuma", "--cells", "pixels", "--run-dir", str(tmp_path / "r")
    )
    assert code == 2
    assert "unknown cell kind 'pixels'" in one_line(err)


def test_ram_cells_on_a_game_without_layout(capsys, tmp_path):
    code, err = run_cli(
        capsys, "explore", "ALE/Pong-v5", "--cells", "ram", "--run-dir", str(tmp_path / "r")
    )
    assert code == 2
    assert "RAM layout" in one_line(err) and "downscale" in err


@pytest.mark.parametrize("frames", ["-5", "-2M", "lots"])
def test_bad_frame_budget(capsys, tmp_path, frames):
    code, err = run_cli(
        capsys, "explore", "montezuma", f"--frames={frames}", "--run-dir", str(tmp_path / "r")
    )
    assert code == 2
    assert "--frames" in one_line(err)


def test_bad_workers(capsys, tmp_path):
    code, err = run_cli(
        capsys, "explore", "montezuma", "--workers", "0", "--run-dir", str(tmp_path / "r")
    )
    assert code == 2 and "--workers" in one_line(err)


def test_run_dir_that_is_not_ours(capsys, tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    code, err = run_cli(capsys, "resume", str(tmp_path))
    assert code == 2 and "not a stepstone run directory" in one_line(err)
    code, err = run_cli(capsys, "explore", "montezuma", "--run-dir", str(tmp_path))
    assert code == 2 and "not empty" in one_line(err)
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_corrupt_run_dir(capsys, tmp_path):
    junk = b"this is not an sqlite database" * 100
    (tmp_path / "run.sqlite").write_bytes(junk)
    for args in (["resume", str(tmp_path)], ["report", str(tmp_path)], ["replay", str(tmp_path)]):
        code, err = run_cli(capsys, *args)
        assert code == 2 and "corrupt" in one_line(err)
    assert (tmp_path / "run.sqlite").read_bytes() == junk


def test_config_mismatch_is_refused(capsys, tmp_path):
    run_dir = str(tmp_path / "run")
    base = [
        "explore",
        "montezuma",
        "--cells",
        "ram",
        "--frames",
        "8k",
        "--workers",
        "1",
        "--run-dir",
        run_dir,
        "--no-progress",
    ]
    assert main(base) == 0
    db = (tmp_path / "run" / "run.sqlite").read_bytes()
    code, err = run_cli(capsys, *[a if a != "ram" else "downscale" for a in base])
    assert code == 2
    assert "different configuration" in one_line(err) and "cells" in err
    assert (tmp_path / "run" / "run.sqlite").read_bytes() == db
    # The same configuration is a continuation, not a conflict.
    assert main([*base[:5], "16k", *base[6:]]) == 0


def test_environment_with_no_way_back_is_refused(capsys, tmp_path, user_env_module):
    """Not picklable and not deterministic: the message names the three ways to fix that."""
    code, err = run_cli(
        capsys,
        "explore",
        "UserUnreturnable-v0",
        "--import",
        user_env_module,
        "--frames",
        "1k",
        "--run-dir",
        str(tmp_path / "r"),
        "--no-progress",
    )
    assert code == 2
    line = one_line(err)
    assert "cannot be snapshotted" in line and "not deterministic" in line
    for way in ("snapshot()/restore()", "--return deepcopy", "--return replay"):
        assert way in line
    assert not (tmp_path / "r").exists()
