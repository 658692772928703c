"""--from-policy: Phase 1 returns to cells by running the robustified policy from reset."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from conftest import USER_ENV_MODULE

from stepstone import replay
from stepstone.cli import main
from stepstone.config import ExploreConfig
from stepstone.engine import Task
from stepstone.store.sqlite import RunStore
from stepstone.trajectories import TrajectoryTree
from stepstone.worker import Worker

pytest.importorskip("torch")


@pytest.fixture(scope="module")
def policy_run(tmp_path_factory):
    """A corridor explored and robustified (a policy walking right to the end, under sticky
    actions 0.25), as tests/test_robustify.py trains one; once for the module (25 s)."""
    from stepstone.learn.robustify import RobustifyConfig, robustify

    home = tmp_path_factory.mktemp("from_policy")
    (home / "user_envs.py").write_text(USER_ENV_MODULE)
    with pytest.MonkeyPatch.context() as mp:
        mp.syspath_prepend(str(home))
        run = home / "demo"
        argv = "explore UserCorridor-v0 --import user_envs --frames 20k --workers 1"
        argv += f" --goal terminated --run-dir {run} --no-progress"
        assert main(argv.split()) == 0
        cfg = RobustifyConfig(frames=8_000, step=5, window=10, eval_episodes=10)
        assert robustify(RunStore.open(run), cfg, baselines=())["success_backward"] >= 0.8
        yield run, "user_envs"


def test_returns_by_the_policy_explore_replay_and_resume(policy_run, tmp_path, capsys):
    demo, module = policy_run
    run = tmp_path / "sid"
    argv = [
        "explore", "UserCorridor-v0", "--import", module, "--goal", "terminated",
        "--from-policy", str(demo), "--sticky", "0.25", "--explore-steps", "5",
        "--frames", "1500", "--workers", "1", "--backend", "inline", "--run-dir", str(run),
        "--no-progress",
    ]  # fmt: skip
    assert main(argv) == 0
    store = RunStore.open(run)
    config = store.config
    assert config.from_policy == str(demo / "robustify" / "policy.pt") and config.sticky == 0.25
    summary = json.loads((run / "summary.json").read_text())
    # Every cell of the corridor lies on the policy's way, so returns reach it; the rate is
    # what the run measured, and the missed returns are counted in the engine's state.
    n, missed = summary["explorations"], store.state().get("missed_returns", 0)
    assert summary["return_success"] == round(1 - missed / n, 4) >= 0.9
    assert "returns by policy" in (run / "report.md").read_text()
    cells_before = summary["cells"]
    assert cells_before > 10
    # Entries found after a return by the policy are stored from reset, and replay to their
    # cell and score (the actions as taken, sticky repeats included).
    archive, tree = store.load_archive(), TrajectoryTree(store.nodes)
    worker = Worker.from_config(config)
    replayed = list(replay.check(worker, config.seed, tree, archive))
    assert replayed and all(r.ok for r in replayed)
    assert main(["replay", str(run)]) == 0
    frames = store.state()["frames"]
    store.close()

    # resume continues the run with the policy its configuration keeps
    resume = ["resume", str(run), "--frames", "3000", "--workers", "1", "--backend", "inline"]
    assert main([*resume, "--no-progress"]) == 0
    store = RunStore.open(run)
    assert store.state()["frames"] > max(frames, 3000 - 200)
    assert len(store.load_archive()) >= cells_before
    store.close()


def test_a_return_the_policy_cannot_make_explores_nothing_and_costs_its_steps(policy_run):
    demo, module = policy_run
    config = ExploreConfig(env="UserCorridor-v0", imports=(module,), goal="terminated",
                           from_policy=str(demo), sticky=0.25)  # fmt: skip
    worker = Worker.from_config(config)
    limit = worker.policy_return().limit
    root = worker.root()
    # A cell nowhere on the corridor: the policy walks to the end (the episode ends) or to
    # its step limit, and the result says the return missed.
    task = Task(1, 999, root.snapshot, 0.0, 0, 0, explore_seed=7)
    result = worker.run(task)
    assert result.missed and len(result.actions) == 0 and result.found == []
    assert 39 <= result.frames <= limit
    # A cell on its way: reached, and the result carries the return's actions from reset.
    worker.env.reset(0)
    for _ in range(20):
        worker.env.step(1)
    twenty = worker.cell_fn(worker.env)  # the cell 20 steps right of the start
    task = Task(2, twenty, root.snapshot, 0.0, 0, 0, explore_seed=8)
    result = worker.run(task)
    assert not result.missed and result.returned is not None
    assert len(result.returned) >= 20 and result.frames == len(result.returned) + len(
        result.actions
    )
    worker.close()


def test_bad_policies_and_refused_combinations_write_nothing(policy_run, tmp_path, capsys):
    demo, module = policy_run
    run = tmp_path / "never"
    base = ["explore", "UserCorridor-v0", "--import", module, "--frames", "200",
            "--run-dir", str(run), "--no-progress"]  # fmt: skip
    cases = {
        ("--from-policy", str(tmp_path / "nothing")): "no policy there",
        ("--from-policy", str(demo), "--seed", "3"): "give --seed 0",
        ("--from-policy", str(demo), "--shards", "2"): "drop --shards",
        ("--from-policy", str(demo), "--backend", "ray"): "use --backend processes or inline",
        ("--from-policy", str(demo / "run.sqlite")): "run robustify again",
        ("--from-policy", str(demo), "--sticky", "1"): "--sticky is a probability",
    }
    for extra, words in cases.items():
        capsys.readouterr()
        assert main([*base, *extra]) == 2, extra
        err = capsys.readouterr().err.strip()
        assert words in err and len(err.splitlines()) == 1, (extra, err)
        assert not run.exists()
    # another environment: refused by its run's configuration, or, for a policy file away
    # from its run directory, by the sizes of its input and output
    loose = tmp_path / "policy.pt"
    shutil.copy(demo / "robustify" / "policy.pt", loose)
    lake = ["explore", "FrozenLake-v1", "--frames", "200", "--run-dir", str(run), "--no-progress"]
    for policy, words in (
        (demo, "was trained on UserCorridor-v0"),
        (loose, "takes 40 inputs and 2 actions, FrozenLake-v1 gives 16 and 4"),
    ):
        capsys.readouterr()
        assert main([*lake, "--from-policy", str(policy)]) == 2
        assert words in capsys.readouterr().err
        assert not run.exists()


def test_runs_without_the_policy_store_their_configuration_as_before():
    data = json.loads(ExploreConfig(env="CartPole-v1").to_json())
    assert "from_policy" not in data and "sticky" not in data
    assert ExploreConfig.from_json(ExploreConfig(env="CartPole-v1").to_json()).sticky == 0.0
    assert np.isclose(ExploreConfig(env="CartPole-v1", sticky=0.25).sticky, 0.25)
