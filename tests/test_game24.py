"""Game of 24: the puzzle set, the verifier, the environment, and exploring to a solution."""

from __future__ import annotations

import json

import pytest

from stepstone.cli import main
from stepstone.envs.game24 import Game24Env, solvable, standard_puzzles, verify
from stepstone.store.sqlite import RunStore
from stepstone.trajectories import TrajectoryTree


def test_standard_set_has_the_1362_solvable_puzzles():
    puzzles = standard_puzzles()
    assert len(puzzles) == 1362
    assert (4, 7, 8, 8) in puzzles and (1, 1, 1, 1) not in puzzles
    assert solvable((3, 3, 8, 8))  # needs fractions: 8 / (3 - 8/3)
    assert (3, 3, 8, 8) in puzzles


@pytest.mark.parametrize(
    "numbers, expression, ok",
    [
        ((4, 7, 8, 8), "(7 - 8/8) * 4", True),
        ((3, 3, 8, 8), "8 / (3 - 8/3)", True),
        ((4, 7, 8, 8), "(7 - 8/8) * 4 + 0", False),  # a number not given
        ((4, 6, 1, 1), "4 * 6", False),  # numbers left unused
        ((4, 7, 8, 8), "(7 - 8/8) * 4)", False),  # not an expression
        ((1, 2, 3, 4), "4 / (2 - 2) + 24", False),  # division by zero
        ((1, 2, 3, 4), "__import__('os')", False),  # only arithmetic is evaluated
    ],
)
def test_verifier(numbers, expression, ok):
    assert verify(numbers, expression) is ok


def test_every_action_is_legal_and_episodes_take_three_steps():
    env = Game24Env((4, 7, 8, 8))
    obs, _ = env.reset(seed=0)
    assert obs == "left: 4 7 8 8 | "
    _, r, done, _, _ = env.step(2)  # pair (0, 1) = (4, 7), op '*'
    assert (r, done) == (0.0, False) and env._obs().startswith("left: 8 8 28 |")
    env.step(47)
    _, r, done, _, info = env.step(47)
    assert done and "expression" in info


def test_exploration_finds_a_solution_that_verifies(tmp_path, capsys):
    run_dir = tmp_path / "run"
    assert (
        main(
            f"explore game24:3,3,8,8 --frames 3k --workers 1 --explore-steps 3 "
            f"--run-dir {run_dir} --no-progress".split()
        )
        == 0
    )
    capsys.readouterr()
    assert main(["report", str(run_dir), "--json"]) == 0
    s = json.loads(capsys.readouterr().out)
    assert s["success"] and s["best_score"] == 1.0
    store = RunStore.open(run_dir)
    archive = store.load_archive()
    best = archive.entry(archive.best())
    env = Game24Env((3, 3, 8, 8))
    env.reset(seed=0)
    info = {}
    for a in TrajectoryTree(store.nodes).actions(best.node, best.length):
        *_, info = env.step(int(a))
    assert verify((3, 3, 8, 8), info["expression"])


def test_bad_puzzle_id(capsys, tmp_path):
    assert main(["explore", "game24:1,2,3", "--run-dir", str(tmp_path / "r")]) == 2
    assert "four whole numbers" in capsys.readouterr().err


def test_iges_integer_rule():
    """IGE's Game of 24 (game_of_24/run.py: perform_operation(smaller, larger, op)): the larger
    number comes first and a division must be exact; 3,3,8,8 needs 8/3, so it is out."""
    from stepstone.envs import EnvSpec, make
    from stepstone.envs.game24 import parse_id
    from stepstone.llm import view

    assert parse_id("game24:4,5,6,10:int") == ((4, 5, 6, 10), True)
    assert parse_id("game24:int") == (None, True) and parse_id("game24") == (None, False)
    assert not solvable((3, 3, 8, 8), integer=True) and solvable((4, 5, 6, 10), integer=True)
    env = Game24Env((2, 3, 8, 8), integer=True)
    env.reset(seed=0)
    _, _, done, _, info = env.step(4 * 0 + 3)  # pair (0, 1) = (2, 3): 3 / 2 has a remainder
    assert done and info["invalid"] == "a division with a remainder"
    env.reset(seed=0)
    env.step(4 * 0 + 1)  # 2 - 3 is taken as 3 - 2
    assert env._obs().startswith("left: 1 8 8 |") and env.steps == ["3-2=1"]
    adapter = make(EnvSpec("game24:2,3,8,8:int"))
    adapter.reset(0)
    texts = [t for _, t in view.choices(adapter)]
    assert "3 - 2 = 1" in texts and "2 - 3 = -1" not in texts and "3 / 2 = 3/2" not in texts
    assert "8 / 2 = 4" in texts and len(texts) == len(set(texts)) == 14
    assert "integer division" in view.goal(adapter)
