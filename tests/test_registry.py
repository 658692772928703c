"""A user's own selector, cell kind and explorer, registered by their module, named on the CLI."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from stepstone import cells, executors, explorers, selectors
from stepstone.cli import main
from stepstone.errors import ConfigError
from stepstone.registry import Registry
from stepstone.selectors.base import Selector
from stepstone.store.sqlite import RunStore

# Cells that pair up the corridor's positions, a selector that prefers the cell farthest along
# it and notes every exploration it is told about (the observe hook), and an explorer that
# walks right four times in five.
PLUGIN = textwrap.dedent(
    """
    import numpy as np

    from stepstone import cells, explorers, selectors
    from stepstone.cells.base import CellFn
    from stepstone.explorers.base import Explorer
    from stepstone.selectors.base import Selector

    OBSERVED = []


    @cells.register("pairs")
    class Pairs(CellFn):
        def __init__(self, width=2):
            self.width = int(width)

        def __call__(self, env):
            return int(env.observe()) // self.width


    @selectors.register("farthest")
    class Farthest(Selector):
        def weights(self, archive):
            n = len(archive)
            return 2.0 ** np.array(archive.cells[:n], dtype=float)

        def observe(self, task, result):
            OBSERVED.append(task.task_id)


    @explorers.register("mostly-right")
    class MostlyRight(Explorer):
        def actions(self, env, rng, steps):
            return (rng.random(steps) < 0.8).astype(int)
    """
)


def test_user_module_registers_selector_cells_explorer_for_explore_and_resume(
    user_env_module, tmp_path, capsys, monkeypatch
):
    (tmp_path / "my_plugins.py").write_text(PLUGIN)
    monkeypatch.chdir(tmp_path)  # --import searches the current directory, as python -m does
    run_dir = tmp_path / "run"
    argv = ["explore", "UserCorridor-v0", "--import", user_env_module, "--import", "my_plugins",
            "--cells", "pairs", "--cell-param", "width=2", "--selector", "farthest", "--explorer",
            "mostly-right", "--frames", "6k", "--workers", "1", "--run-dir", str(run_dir),
            "--no-progress"]  # fmt: skip
    assert main(argv) == 0
    import my_plugins  # type: ignore[import-not-found]

    assert my_plugins.OBSERVED  # the driver built the user's selector and told it each result
    store = RunStore.open(run_dir)
    assert store.config.imports == (user_env_module, "my_plugins")
    cells_found = set(store.load_archive().cells)
    store.close()
    # 40 positions in pairs: the user's cells, and the farthest-first selector reached the end
    assert cells_found == set(range(20))

    # A fresh process knows neither name until the run's configuration imports the module.
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), *sys.path])}
    done = subprocess.run(
        [sys.executable, "-m", "stepstone.cli", "resume", str(run_dir), "--frames", "8k",
         "--workers", "1", "--no-progress"],  # fmt: skip
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    store = RunStore.open(run_dir)
    assert store.metrics()[-1]["frames"] >= 8_000
    assert set(store.load_archive().cells) == set(range(20))
    store.close()
    capsys.readouterr()
    assert main(["replay", str(run_dir), "--cell", "all"]) == 0


def test_unknown_names_list_the_registered_ones(capsys, tmp_path):
    with pytest.raises(ConfigError, match="unknown selector 'best'; choose one of count, "):
        selectors.make("best")
    with pytest.raises(ConfigError, match="unknown backend 'mpi'; choose one of processes"):
        executors.check_workers(2, "mpi")
    assert main(["explore", "FrozenLake-v1", "--selector", "best", "--run-dir",
                 str(tmp_path / "r")]) == 2  # fmt: skip
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "knapsack" in err and not (tmp_path / "r").exists()


def test_registry_refuses_what_breaks_its_contract():
    registry = Registry("selector", Selector, {"count": ".count_based:CountBased"}, "x")

    class NotASelector:
        pass

    with pytest.raises(TypeError, match="subclass of stepstone.selectors.base.Selector"):
        registry.register("mine", NotASelector)  # type: ignore[type-var]
    with pytest.raises(ValueError, match="'count' is taken"):
        selectors.register("count", selectors.Uniform)
    assert selectors.REGISTRY["count"] is selectors.CountBased  # unchanged


def test_heavy_members_stay_unimported_until_chosen():
    code = (
        "import sys, stepstone.cli, stepstone.worker, stepstone.runner; "
        "print(any(m in sys.modules for m in ('torch', 'ray', 'stepstone.cells.learned', "
        "'stepstone.executors.ray', 'stepstone.explorers.llm')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "False", out.stderr


def test_capabilities_are_declared_by_the_base_classes():
    """What the worker and runner test with isinstance, each built-in kind declares."""
    from stepstone.cells.dynamic import DynamicDownscale
    from stepstone.cells.novelty import NoveltyCells

    assert isinstance(DynamicDownscale(), cells.AdaptiveCells)
    novelty = NoveltyCells()
    assert isinstance(novelty, cells.DriverDecidedCells)
    assert isinstance(novelty.rule(), cells.CellRule)
    assert not isinstance(cells.Downscale(), (cells.AdaptiveCells, cells.DriverDecidedCells))
    assert explorers.REGISTRY.names()[:2] == ["random", "llm"]  # then any a test registered
    assert [n for n in selectors.REGISTRY if selectors.uses_model(n)] == ["ige", "lfg"]


def test_a_missing_module_is_refused_only_when_a_name_needs_it():
    from stepstone.config import ExploreConfig
    from stepstone.errors import EnvironmentNotFound

    # A run of an environment registered by a module this machine lacks still loads (report).
    config = ExploreConfig("Elsewhere-v0", imports=("no_such_module_here",))
    assert ExploreConfig.from_json(config.to_json()) == config
    with pytest.raises(EnvironmentNotFound, match="cannot import module 'no_such_module_here'"):
        ExploreConfig("Elsewhere-v0", selector="mine", imports=("no_such_module_here",))
