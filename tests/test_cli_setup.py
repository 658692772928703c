"""The first commands a user types: --version, help with defaults, --import from the current
directory, a missing extra named, and environment arguments kept with the run."""

from __future__ import annotations

import importlib.util
import sys

import pytest
from conftest import USER_ENV_MODULE

from stepstone import __version__
from stepstone.cli import build_parser, main
from stepstone.store.sqlite import RunStore


def error_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and err.startswith("stepstone: error: ")
    return err


def test_version(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.strip() == f"stepstone {__version__}"


def test_explore_help_shows_defaults_and_explains_every_option():
    explore = build_parser()._subparsers._group_actions[0].choices["explore"]
    text = " ".join(explore.format_help().split())
    for shown in ("(default: 1M)", "(default: 100; 10 in browser worlds)", "(default: auto)"):
        assert shown in text, shown
    assert "(default: None)" not in text and "(default: False)" not in text
    assert all(a.help for a in explore._actions), [a.dest for a in explore._actions if not a.help]
    replay = build_parser()._subparsers._group_actions[0].choices["replay"]
    assert "every cell's" in " ".join(replay.format_help().split())  # --cell all


def test_import_finds_a_module_in_the_current_directory(tmp_path, monkeypatch, capsys):
    # its own ids: the shared module's are registered by other tests of this session
    (tmp_path / "corridor_here.py").write_text(USER_ENV_MODULE.replace('"User', '"Here'))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(tmp_path))])
    args = "explore HereCorridor-v0 --import corridor_here --frames 300 --backend inline"
    assert main([*args.split(), "--run-dir", str(tmp_path / "run"), "--no-progress"]) == 0
    sys.modules.pop("corridor_here", None)


def test_a_missing_extra_is_named(tmp_path, monkeypatch, capsys):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "minigrid" else real(name, *a)
    )
    run_dir = tmp_path / "run"
    assert main(["explore", "MiniGrid-DoorKey-5x5-v0", "--run-dir", str(run_dir)]) == 2
    assert error_line(capsys) == (
        "stepstone: error: 'MiniGrid-DoorKey-5x5-v0' needs an extra: "
        "pip install 'stepstone[minigrid]'"
    )
    assert not run_dir.exists()


def test_env_args_reach_gymnasium_and_stay_with_the_run(tmp_path, capsys):
    # FrozenLake's default map has 16 squares; map_name=8x8 has 64, so more than 16 cells
    # can only come from the argument, in the first session and in the resumed one
    run_dir = tmp_path / "run"
    args = "explore FrozenLake-v1 --env-arg map_name=8x8 --env-arg is_slippery=false"
    common = ["--backend", "inline", "--workers", "1", "--no-progress"]
    assert main([*args.split(), "--frames", "3k", "--run-dir", str(run_dir), *common]) == 0
    store = RunStore.open(run_dir)
    assert store.config.env_args == {"map_name": "8x8", "is_slippery": False}
    first = len(store.load_archive())
    assert first > 16
    assert main(["resume", str(run_dir), "--frames", "6k", *common]) == 0
    assert len(RunStore.open(run_dir).load_archive()) >= first
    capsys.readouterr()


@pytest.mark.parametrize(
    ("env_arg", "message"),
    [
        ("map_name", "--env-arg takes NAME=VALUE, e.g. map_name=8x8, not 'map_name'"),
        ("no_such_argument=1", "gymnasium could not make 'FrozenLake-v1'"),
        # types the environment declares (FrozenLakeEnv's signature); maybe was taken as true
        ("is_slippery=maybe", '--env-arg is_slippery takes true or false, not "maybe"'),
        (
            "map_name=8",
            """map_name takes text, not 8 (as text, quoted: --env-arg 'map_name="8"')""",
        ),
        # Gymnasium's own error names its type and the values (it said only '8')
        (
            'map_name="8"',
            "could not make 'FrozenLake-v1' with --env-arg map_name='8': KeyError: '8'",
        ),
    ],
)
def test_bad_env_args_are_one_line(tmp_path, capsys, env_arg, message):
    run_dir = tmp_path / "run"
    args = ["explore", "FrozenLake-v1", "--env-arg", env_arg, "--run-dir", str(run_dir)]
    assert main(args) == 2
    assert message in error_line(capsys)
    assert not run_dir.exists()


def test_env_args_minigrid_cannot_use_are_one_line(tmp_path, capsys):
    """MiniGrid's EmptyEnv declares no types: size=abc was a pow() TypeError from its grid
    (now checked against the default's type), agent_start_pos=5 a traceback from its reset."""
    pytest.importorskip("minigrid")
    run_dir = tmp_path / "run"
    args = ["explore", "MiniGrid-Empty-5x5-v0", "--env-arg", "size=abc", "--run-dir", str(run_dir)]
    assert main(args) == 2
    assert error_line(capsys).endswith('--env-arg size takes a number, not "abc"')
    assert not run_dir.exists()
    # a value gym.make takes and the first reset cannot use was a traceback from MiniGrid
    args[3] = "agent_start_pos=5"
    assert main(args) == 2
    assert error_line(capsys).endswith(
        "with --env-arg agent_start_pos=5 failed as it started: "
        "TypeError: 'bool' object is not iterable"
    )
    assert not run_dir.exists()


def test_an_error_without_words_says_where_it_was_raised(tmp_path, monkeypatch, capsys):
    """Gymnasium-Robotics' FetchReach-v4 fails a bare assert under another MuJoCo: the line
    was "gymnasium could not make 'FetchReach-v4': AssertionError: ", nothing to go on."""
    (tmp_path / "asserting_env.py").write_text(
        "import gymnasium as gym\n\n"
        "class Broken(gym.Env):\n"
        "    def __init__(self):\n"
        "        assert 1 + 1 == 3\n\n"
        'gym.register("Asserting-v0", entry_point=Broken)\n'
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    args = [
        "explore",
        "Asserting-v0",
        "--import",
        "asserting_env",
        "--run-dir",
        str(tmp_path / "r"),
    ]
    assert main(args) == 2
    line = error_line(capsys)
    assert line.endswith(
        "gymnasium could not make 'Asserting-v0': AssertionError at "
        f"{tmp_path}/asserting_env.py:5 (assert 1 + 1 == 3)"
    )
    sys.modules.pop("asserting_env", None)


def test_ids_of_the_old_gym_package_are_said_and_run_through_shimmy(tmp_path, monkeypatch, capsys):
    """gym_super_mario_bros registers with the old gym package: the line said "unknown
    environment id" and to --import the module the user had imported. Gymnasium runs such
    environments as GymV26Environment-v0 once shimmy is imported, which stepstone now does."""
    import types

    import gymnasium as gym

    old = types.SimpleNamespace(envs=types.SimpleNamespace(registry={"OldOnly-v0": None}))
    monkeypatch.setitem(sys.modules, "gym", old)
    assert main(["explore", "OldOnly-v0", "--run-dir", str(tmp_path / "r")]) == 2
    assert error_line(capsys).endswith(
        "'OldOnly-v0' is registered with the old gym package, not Gymnasium; Gymnasium runs it "
        "through shimmy: pip install 'shimmy[gym-v26]', then explore GymV26Environment-v0 "
        "--env-arg env_id=OldOnly-v0 with the same --import"
    )
    # a stand-in for shimmy, which re-registers the id on import, as the real one does
    (tmp_path / "shimmy.py").write_text(
        "import gymnasium as gym\n"
        "gym.registry.pop('GymV26Environment-v0', None)\n"
        "gym.register('GymV26Environment-v0', entry_point=lambda env_id: gym.make(env_id))\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("PYTHONPATH", f"{tmp_path}:{':'.join(sys.path)}")
    monkeypatch.setitem(gym.registry, "GymV26Environment-v0", gym.spec("GymV26Environment-v0"))
    args = ["explore", "GymV26Environment-v0", "--env-arg", "env_id=CartPole-v1",
            "--frames", "300", "--backend", "inline", "--no-progress",
            "--run-dir", str(tmp_path / "s")]  # fmt: skip
    assert main(args) == 0
    sys.modules.pop("shimmy", None)


def test_atari_env_args_are_its_settings(tmp_path, capsys):
    args = ["explore", "montezuma", "--env-arg", "sticky=0.25", "--run-dir", str(tmp_path / "r")]
    assert main(args) == 2
    line = error_line(capsys)
    assert "--env-arg sticky is not an Atari setting; known: frameskip" in line
    assert line.endswith("sticky actions are an option of their own: --sticky P")
    args[3] = "repeat_action_probability=0.25"  # ALE's name for them
    assert main(args) == 2 and error_line(capsys).endswith("their own: --sticky P")
    args[3] = "obs_type=ram"  # Gymnasium's RAM observation: here the cells' choice
    assert main(args) == 2
    assert error_line(capsys).endswith(
        "the cells choose what is read: the screen, or with --cells ram the RAM of a game "
        "whose layout is known (montezuma_revenge, pitfall)"
    )
    # a setting of the wrong type is said as such (mode=1.5 was a traceback from ALE)
    for arg, says in (
        ("mode=1.5", "mode takes an integer, not 1.5"),
        ("full_action_space=3", "full_action_space takes true or false, not 3"),
        ("mode=99", "mode=99: montezuma_revenge has modes 0"),  # was ALE's RuntimeError
        ("difficulty=9", "difficulty=9: montezuma_revenge has difficulties 0"),
        ("frameskip=0", "frameskip is at least 1, not 0"),  # ran 0 frames, said interrupted
    ):
        args[3] = arg
        assert main(args) == 2 and error_line(capsys).endswith(f"--env-arg {says}")
    assert not (tmp_path / "r").exists()
