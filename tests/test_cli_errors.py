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


def test_a_file_given_to_import_names_the_module_to_give(capsys, tmp_path):
    mine = tmp_path / "myenvs.py"
    mine.write_text("raise SystemExit('not to be run')\n")
    code, err = run_cli(
        capsys, "explore", "MyEnv-v0", "--import", str(mine), "--run-dir", str(tmp_path / "r")
    )
    assert code == 2
    assert one_line(err) == (
        "stepstone: error: --import takes a module name, not a file: give --import myenvs, "
        f"run from {tmp_path} (or with it on PYTHONPATH)"
    )
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
    # not an Atari game at all: no "use --cells downscale", which does not fit it either
    code, err = run_cli(
        capsys, "explore", "CartPole-v1", "--cells", "ram", "--run-dir", str(tmp_path / "r")
    )
    line = one_line(err)
    assert code == 2 and "is not an Atari game; --cells auto chooses" in line
    assert "downscale" not in line and not (tmp_path / "r").exists()


@pytest.mark.parametrize("frames", ["-5", "-2M", "lots", "inf", "nan", "1e99"])
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


def test_workers_beyond_a_few_per_core_are_refused(capsys, tmp_path):
    code, err = run_cli(
        capsys, "explore", "montezuma", "--workers", "10000", "--run-dir", str(tmp_path / "r")
    )
    assert code == 2 and "per core" in one_line(err) and "--backend ray" in err
    assert not (tmp_path / "r").exists()


def test_a_cell_parameter_auto_does_not_take_names_what_auto_is(capsys, tmp_path):
    # gamma belongs to fixed downscaling, Atari's auto before it became dynamic downscaling
    code, err = run_cli(
        capsys, "explore", "montezuma", "--cell-param", "gamma=0.5",
        "--run-dir", str(tmp_path / "r"),
    )  # fmt: skip
    line = one_line(err)
    assert code == 2 and "'gamma'" in line and "--cells auto is dynamic here" in line
    assert "--cells downscale" in line and not (tmp_path / "r").exists()
    # a sharded run's auto is fixed downscaling: dynamic's parameters name no example
    code, err = run_cli(
        capsys, "explore", "montezuma", "--shards", "2", "--cell-param", "split_factor=0.2",
        "--run-dir", str(tmp_path / "r"),
    )  # fmt: skip
    line = one_line(err)
    assert code == 2 and "'split_factor'" in line and "--cells auto is downscale here" in line
    assert "e.g. --cells downscale" not in line and not (tmp_path / "r").exists()
    # a parameter auto's kind takes, with a value out of range: said as such, no other kind
    code, err = run_cli(
        capsys, "explore", "montezuma", "--cell-param", "first_sample=-1",
        "--run-dir", str(tmp_path / "r"),
    )  # fmt: skip
    line = one_line(err)
    assert code == 2 and "first_sample must be >= 0" in line and "--cells auto is" not in line
    code, err = run_cli(
        capsys, "explore", "montezuma", "--cell-param", "width=abc",
        "--run-dir", str(tmp_path / "r"),
    )  # fmt: skip
    line = one_line(err)
    assert code == 2 and 'width takes an integer, not "abc"' in line
    assert "--cells auto is" not in line
    # a name mistyped: the kind's own name suggested, not another kind
    code, err = run_cli(
        capsys, "explore", "montezuma", "--cell-param", "wdth=16",
        "--run-dir", str(tmp_path / "r"),
    )  # fmt: skip
    line = one_line(err)
    assert code == 2 and "'wdth'; did you mean width?" in line and "--cells auto is" not in line


@pytest.mark.parametrize(
    "cells, param, says",
    [
        ("downscale", "width=abc", 'width takes an integer, not "abc"'),
        ("downscale", "width=true", "width takes an integer, not true"),  # was a traceback
        ("dynamic", "levels=2.5", "levels takes an integer, not 2.5"),
        ("downscale", "gamma=high", 'gamma takes a number, not "high"'),
    ],
)
def test_a_cell_parameter_of_the_wrong_type(capsys, tmp_path, cells, param, says):
    code, err = run_cli(
        capsys, "explore", "montezuma", "--cells", cells, "--cell-param", param,
        "--run-dir", str(tmp_path / "r"),
    )  # fmt: skip
    assert code == 2 and "--cell-param " + says in one_line(err)
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("cells", ["downscale", "dynamic"])
def test_a_cell_parameter_out_of_range(capsys, tmp_path, cells):
    code, err = run_cli(
        capsys, "explore", "montezuma", "--cells", cells, "--cell-param", "width=0",
        "--run-dir", str(tmp_path / "r"),
    )  # fmt: skip
    assert code == 2 and "width" in one_line(err)


@pytest.mark.parametrize(
    "param, says",
    [
        ("top=2", "highest-scoring cells, in [0, 1], not 2"),
        ("tresh=0.1", "unexpected keyword argument 'tresh'; did you mean threshold?"),
        ("top", "takes NAME=VALUE"),
        ("top=[1]", "takes a number, true/false or text"),
        ("top=abc", 'top takes a number, not "abc"'),
        ("top=true", "top takes a number, not true"),  # was taken for 1
    ],
)
def test_a_selector_parameter_it_does_not_take(capsys, tmp_path, param, says):
    code, err = run_cli(
        capsys, "explore", "montezuma", "--selector", "clustered", "--selector-param", param,
        "--run-dir", str(tmp_path / "r"),
    )  # fmt: skip
    assert code == 2 and says in one_line(err)
    assert not (tmp_path / "r").exists()


def test_a_selector_parameter_the_run_gives(capsys, tmp_path):
    code, err = run_cli(
        capsys, "explore", "montezuma", "--selector", "ige", "--llm-model", "m", "--llm-url",
        "http://localhost:9", "--selector-param", "model=other", "--run-dir", str(tmp_path / "r"),
    )  # fmt: skip
    assert code == 2 and "model is given by the run" in one_line(err)
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize(
    "how", [("--cells", "novelty"), ("--cells", "bins"), ("--from-policy", "nowhere.pt")]
)
def test_score_cells_with_keys_the_worker_does_not_compute(capsys, tmp_path, how):
    """Novelty cells are decided in the driver, bins re-keyed from stored states, and a
    policy's return knows no score: none can add the score to its key, so it is refused
    before a run directory exists."""
    code, err = run_cli(
        capsys, "explore", "MountainCar-v0", "--score-cells", *how,
        "--run-dir", str(tmp_path / "r"),
    )  # fmt: skip
    assert code == 2 and not (tmp_path / "r").exists()
    assert "--score-cells puts the score into keys the worker computes" in one_line(err)


USER_CELLS = """
def raises(obs):
    raise RuntimeError("my bug")

def a_list(obs):
    return [1, 2]

def an_object(obs):
    return object()
"""


@pytest.mark.parametrize(
    "fn, says", [("raises", "RuntimeError: my bug"), ("a_list", "unhashable"),
                 ("an_object", "cannot store a value of type object")],
)  # fmt: skip
def test_a_user_cell_function_that_fails(capsys, tmp_path, monkeypatch, fn, says):
    (tmp_path / "user_cells.py").write_text(USER_CELLS)
    monkeypatch.syspath_prepend(str(tmp_path))
    code, err = run_cli(
        capsys, "explore", "CartPole-v1", "--cells", f"user_cells:{fn}", "--frames", "1k",
        "--workers", "1", "--run-dir", str(tmp_path / "r"), "--no-progress",
    )  # fmt: skip
    assert code == 2 and says in one_line(err) and f"user_cells:{fn}" in err


def test_an_import_that_raises(capsys, tmp_path, monkeypatch):
    (tmp_path / "broken_envs.py").write_text("raise ValueError('half written')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    code, err = run_cli(
        capsys, "explore", "CartPole-v1", "--import", "broken_envs", "--run-dir",
        str(tmp_path / "r"),
    )  # fmt: skip
    assert code == 2 and "half written" in one_line(err) and "broken_envs" in err
    # a bare assert says where it is (the line was "raised AssertionError: ; fix ...")
    (tmp_path / "asserting_envs.py").write_text("x = 1\nassert x == 2\n")
    code, err = run_cli(
        capsys, "explore", "CartPole-v1", "--import", "asserting_envs", "--run-dir",
        str(tmp_path / "r"),
    )  # fmt: skip
    assert code == 2
    assert f"raised AssertionError at {tmp_path}/asserting_envs.py:2 (assert x == 2)" in one_line(
        err
    )


def test_a_run_dir_under_a_file(capsys, tmp_path):
    (tmp_path / "file").write_text("x")
    code, err = run_cli(
        capsys, "explore", "CartPole-v1", "--frames", "1k", "--run-dir",
        str(tmp_path / "file" / "sub"), "--no-progress",
    )  # fmt: skip
    assert code == 2 and "cannot create run directory" in one_line(err)


@pytest.fixture(scope="module")
def text_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("text") / "run"
    args = ["explore", "game24:1,2,3,4", "--frames", "300", "--workers", "1", "--run-dir"]
    assert main([*args, str(run), "--no-progress"]) == 0
    return run


def test_export_onto_a_directory_or_an_existing_file(capsys, tmp_path, text_run):
    code, err = run_cli(capsys, "export", str(text_run), "--format", "jsonl", "--out",
                        str(tmp_path))  # fmt: skip
    assert code == 2 and "is a directory" in one_line(err)
    out = tmp_path / "data.jsonl"
    out.write_text("keep")
    code, err = run_cli(capsys, "export", str(text_run), "--format", "jsonl", "--out", str(out))
    assert code == 2 and "--overwrite" in one_line(err) and out.read_text() == "keep"
    code, _ = run_cli(capsys, "export", str(text_run), "--format", "jsonl", "--out", str(out),
                      "--overwrite")  # fmt: skip
    assert code == 0 and out.read_text() != "keep"


def test_a_second_minari_export_with_the_same_id(capsys, tmp_path, monkeypatch):
    pytest.importorskip("minari")
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "datasets"))
    # a malformed directory of someone else's under the datasets (Minari's own listing fails)
    (tmp_path / "datasets" / "t" / "x-v0" / "data").mkdir(parents=True)
    run = tmp_path / "run"
    assert main(["explore", "CartPole-v1", "--frames", "500", "--workers", "1", "--run-dir",
                 str(run), "--no-progress"]) == 0  # fmt: skip
    args = ["export", str(run), "--format", "minari", "--dataset-id", "test/cartpole-v0"]
    assert main(args) == 0
    capsys.readouterr()
    code, err = run_cli(capsys, *args)
    assert code == 2 and "exists" in one_line(err) and "--overwrite" in err
    assert main([*args, "--overwrite"]) == 0
    capsys.readouterr()
    for bad in ("t/x-v0", "no-version"):
        code, err = run_cli(capsys, *args[:-1], bad)
        assert code == 2 and "not a Minari dataset id" in one_line(err)


@pytest.mark.parametrize("command", ["report", "replay"])
def test_ctrl_c_during_a_reading_command(capsys, monkeypatch, text_run, command):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("stepstone.report.write", interrupted)
    monkeypatch.setattr("stepstone.replay.check", interrupted)
    code, err = run_cli(capsys, command, str(text_run))
    assert code == 130 and "interrupted" in one_line(err)


def test_a_ray_address_nothing_answers_at_is_said_at_once(capsys, tmp_path):
    """ray.init waited minutes on 127.0.0.1:1, printing its retries, after the run directory
    was written."""
    pytest.importorskip("ray")
    code, err = run_cli(
        capsys, "explore", "CartPole-v1", "--backend", "ray", "--address", "127.0.0.1:1",
        "--run-dir", str(tmp_path / "r"),
    )  # fmt: skip
    line = one_line(err)
    assert code == 2 and "cannot reach the Ray cluster at '127.0.0.1:1'" in line
    assert "ray start --head" in line and not (tmp_path / "r").exists()
    # an address that answers passes, a bracketed IPv6 one too
    import socket

    from stepstone.executors.ray import check_reachable

    for family, host in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
        with socket.socket(family) as listening:
            listening.bind((host, 0))
            listening.listen()
            port = listening.getsockname()[1]
            check_reachable(f"[{host}]:{port}" if ":" in host else f"{host}:{port}")
