"""Adaptive per-dimension bins: the choice against hand-computed objectives, pinning, parts,
re-keying that keeps every trajectory, the report of choices, and resume after a re-choice."""

from __future__ import annotations

import base64
import json
from collections import Counter

import numpy as np
import pytest

from stepstone import cells, runner
from stepstone.cells.bins import OFF, START_BITS, AdaptiveBins, Bins, split
from stepstone.cells.downscale import Downscale
from stepstone.cells.observation import freeze
from stepstone.cells.schedule import RecentSample
from stepstone.cli import main
from stepstone.config import ExploreConfig, RunOptions
from stepstone.errors import ConfigError
from stepstone.runner import open_run, run
from stepstone.store.sqlite import RunStore


class Env:
    """Just enough of an adapter for cells: an observation and no default cells."""

    default_cells = None

    def __init__(self, obs):
        self.obs = obs

    def observe(self):
        return self.obs


def choose(rows, split_factor=0.125, shape=None):
    c = AdaptiveBins(len(rows[0]), split_factor=split_factor)
    if shape is not None:
        c.set_shape(shape)
    return c.choose(
        [(np.array(r, dtype=np.float64), (), ()) for r in rows], np.random.default_rng()
    )


def test_one_dimension_takes_the_bins_that_split_the_sample_into_the_target():
    # 64 states evenly over [0, 1), T = 0.125 * 64 = 8. std = 0.2886, 2**-2 <= std: bits = r + 2.
    # bits 1: 2 cells, score 1/sqrt(6/8 + 1) = 0.756; bits 2: 4 cells, 1/sqrt(1.5) = 0.816;
    # bits 3: 8 even cells, score 1; bits 4: 16 cells, 1/sqrt(2) = 0.707. Best: 3 (bins of 1/8).
    rows = [[i / 64] for i in range(64)]
    assert choose(rows) == (3,)
    # A dimension that does not vary in the sample cannot be judged: it is left out.
    assert choose([[i / 64, 5.0] for i in range(64)]) == (3, OFF)


def test_dimensions_are_measured_in_their_own_spread_then_refined():
    # The 64 points of an 8 x 8 grid, x in steps of 1/8 and y in steps of 125; T = 8.
    # x: std 0.286, exponent -2; y: std 286, exponent 8; one resolution r gives (r+2, r-8).
    # r = -1, (1, -9): 2 x 2 even cells, score 1/sqrt(4/8 + 1) = 0.816, the best r (r = 0
    # gives 16 uneven cells, <= 0.707). Refined: x one bit finer, (2, -9): 4 x 2 = 8 even
    # cells of 8, score 1, which nothing beats.
    rows = [[i / 8, 125.0 * j] for i in range(8) for j in range(8)]
    assert choose(rows) == (2, -9)
    grid = Bins([2, -9])
    assert len({grid.key_of(np.array(r), (), ()) for r in rows}) == 8


def test_too_small_a_sample_keeps_the_shape():
    assert choose([[0.5, 1.0]], shape=(4, 4)) == (4, 4)
    assert AdaptiveBins(3).shape == (START_BITS,) * 3


def test_keys_are_floor_of_x_times_two_to_the_bits():
    b = Bins([3, None, -1])
    key = b(Env(np.array([0.26, 7.0, -3.0], dtype=np.float32)))
    assert key == (2, 0, -2)  # 0.26 * 8, off, -3 / 2


def test_pinned_bits_and_decimals_are_fixed_cells():
    env = Env(np.array([0.3, -0.02]))
    pinned = cells.make("bins", env, {"bits": [3, 8]})
    assert isinstance(pinned, Bins) and not isinstance(pinned, cells.AdaptiveCells)
    assert pinned(env) == (2, -6)
    assert cells.make("bins", env, {"bits": 2}).bits == [2, 2]  # one value for every dimension
    with pytest.raises(ConfigError, match="list of 2"):
        cells.make("bins", env, {"bits": [1, 2, 3]})
    # auto: adaptive bins for floats; decimals=N keeps the old rounding; a run made before
    # auto was adaptive (cells_auto 1) keeps its meaning.
    assert cells.resolve("auto", {}, env) == ("bins", {})
    assert cells.resolve("auto", {"bits": 4}, env) == ("bins", {"bits": 4})
    assert cells.resolve("auto", {"decimals": 2}, env) == ("observation", {"decimals": 2})
    assert cells.resolve("auto", {}, env, version=1) == ("observation", {})
    assert cells.resolve("auto", {}, Env(7)) == ("observation", {})  # Discrete: itself
    assert cells.resolve("auto", {}, Env("a room")) == ("observation", {})  # text
    # Pictures (uint8 rows x columns, with 1, 3 or 4 channels or none): dynamic downscaling
    # since version 3; a run made at version 2 keeps the frame itself as its cell.
    for picture in ((16, 80, 3), (16, 80), (16, 80, 1), (16, 80, 4)):
        assert cells.resolve("auto", {}, Env(np.zeros(picture, np.uint8))) == ("dynamic", {})
    rgb = Env(np.zeros((16, 80, 3), np.uint8))
    assert cells.resolve("auto", {"levels": 4}, rgb) == ("dynamic", {"levels": 4})
    assert cells.resolve("auto", {}, rgb, version=2) == ("observation", {})
    assert cells.resolve("auto", {"decimals": 0}, rgb) == ("observation", {"decimals": 0})
    assert cells.resolve("auto", {}, Env(np.zeros((16, 80, 2), np.uint8))) == ("observation", {})
    # Planes first: 2 to 8 of at least 16 x 16 (FrameStackObservation of gray frames).
    stacked = Env(np.zeros((4, 84, 84), np.uint8))
    assert cells.resolve("auto", {}, stacked) == ("dynamic", {})
    for grid in ((20, 84, 84), (4, 8, 8)):  # a symbolic grid's many planes; a tiny one
        assert cells.resolve("auto", {}, Env(np.zeros(grid, np.uint8))) == ("observation", {})
    assert cells.resolve("auto", {}, Env(np.zeros(5, np.uint8))) == ("observation", {})
    # A picture among parts is downscaled since version 4; before, it was kept exact.
    with_state = Env({"pixels": np.zeros((16, 80, 3), np.uint8), "state": np.zeros(4)})
    assert cells.resolve("auto", {}, with_state) == ("bins", {})
    assert cells.resolve("auto", {}, with_state, version=3) == ("bins", {"pictures": "exact"})
    with_level = Env({"pixels": np.zeros((16, 80), np.uint8), "level": 2})
    assert cells.resolve("auto", {}, with_level) == ("bins", {})
    assert cells.resolve("auto", {}, with_level, version=3) == ("observation", {})
    stored_before = json.dumps({"env": "CartPole-v1", "cells": "auto"})
    assert ExploreConfig.from_json(stored_before).cells_auto == 1


def test_dicts_and_tuples_are_cells_by_their_parts():
    obs = {"pos": np.array([0.3, -1.2]), "room": 3, "inner": (np.float32(0.5), "door")}
    floats, pictures, fixed = split(obs)
    assert floats.tolist() == [0.5, 0.3, -1.2]  # keys sorted: inner, pos, room
    assert len(fixed) == 2 and pictures == ()
    c = cells.make("bins", Env(obs), {})
    assert isinstance(c, AdaptiveBins) and c.shape == (START_BITS,) * 3
    c.set_shape((1, 2, 3))
    env = Env(obs)
    assert c.key_from_source(c.source(env)) == c(env)
    moved = Env({**obs, "room": 4})
    assert c(moved) != c(env)  # the discrete part is part of the cell
    # The discrete parts split the sample too: 8 rooms already make the target of 64 states
    # (T = 8), so the float (0 or 0.1 in each room) is not cut: 16 cells would score less.
    rows = [(np.array([0.1 * (i // 8 % 2)]), (), (i % 8,)) for i in range(64)]
    shape = AdaptiveBins(1).choose(rows, np.random.default_rng())
    assert len({Bins(list(shape)).key_of(*r) for r in rows}) == 8


def bar(x: int) -> np.ndarray:
    """A 16 x 64 picture, black but for column x."""
    frame = np.zeros((16, 64), np.uint8)
    frame[:, x] = 255
    return frame


def test_picture_parts_are_downscaled_with_shapes_chosen_beside_the_bins():
    obs = {"pixels": np.stack([bar(5)] * 3, axis=-1), "state": np.array([0.25]), "level": 2}
    floats, pictures, fixed = split(obs)
    assert floats.tolist() == [0.25] and fixed == ((np.dtype(int).str, (), np.int64(2).tobytes()),)
    assert len(pictures) == 1 and np.array_equal(pictures[0], bar(5))  # gray, 2-D
    c = cells.make("bins", Env(obs), {})
    assert c.shape == (START_BITS, 11, 8, 8)  # fixed downscaling's shape until a choice
    assert c(Env(obs)) == (2, Downscale(11, 8, 8).key_of(bar(5)), fixed[0])
    assert c.key_from_source(c.source(Env(obs))) == c(Env(obs))
    c.set_shape((1, 4, 2, 3))
    assert c(Env(obs))[1] == Downscale(4, 2, 3).key_of(bar(5))
    assert c.key_from_source(c.source(Env(obs))) == c(Env(obs))
    pinned = cells.make("bins", Env(obs), {"bits": 2})  # pictures at 11 x 8 x 8 with it
    assert pinned(Env(obs)) == (1, Downscale(11, 8, 8).key_of(bar(5)), fixed[0])
    exact = cells.make("bins", Env(obs), {"pictures": "exact"})
    assert exact.shape == (START_BITS,) and exact(Env(obs))[1:] == (
        fixed[0],
        freeze(obs["pixels"], 0),
    )
    # The objective (the reference's): 64 states, a bar at each column, T = 8 cells. Width 8
    # cuts them into 8 cells of 8, the best score there is (1.0), from 11 x 8 x 8's 11+.
    rows = [(np.array([0.5]), (bar(x),), ()) for x in range(64)]
    shape = AdaptiveBins(1, 1).choose(rows, np.random.default_rng())
    grid = Bins(shape[:1], [shape[1:]])
    assert shape[1] == 8 and sorted(Counter(grid.key_of(*r) for r in rows).values()) == [8] * 8
    # Noise beside a telling float: every frame its own cell at 11 x 8 x 8 (64, not the 8
    # aimed at), so the picture is coarsened (to a few pixels at 2 levels, the noise's mean
    # either side of 128) and the joint cells brought to the 8: not 64.
    rng = np.random.default_rng(0)
    noise = [rng.integers(0, 256, (16, 64), np.uint8) for _ in range(64)]
    assert len({Downscale(11, 8, 8).key_of(f) for f in noise}) == 64
    rows = [(np.array([x / 64]), (noise[x],), ()) for x in range(64)]
    shape = AdaptiveBins(1, 1).choose(rows, rng)
    grid = Bins(shape[:1], [shape[1:]])
    assert len({grid.key_of(np.array([0.0]), r[1], ()) for r in rows}) <= 8
    assert len({grid.key_of(*r) for r in rows}) == 8
    # Two pictures showing the same (a bar and its mirror, with text beside): one picture's
    # width alone cannot reach 8 cells while the other splits the states at 11 columns; both
    # are scaled at once.
    two = [(np.zeros(0), (bar(x), bar(63 - x)), (freeze("text", 0),)) for x in range(64)]
    shape = AdaptiveBins(0, 2).choose(two, np.random.default_rng())
    grid = Bins([], [shape[:3], shape[3:]])
    assert sorted(Counter(grid.key_of(*r) for r in two).values()) == [8] * 8
    with pytest.raises(ConfigError, match="--cells observation"):
        cells.make("bins", Env({"pixels": bar(1), "level": 2}), {"pictures": "exact"})


def test_a_wide_float_observation_keeps_its_sample_small_and_one_resolution():
    """A 64 x 64 x 3 float picture is 12,288 float dimensions: 4,000 sampled states would be
    390 MB kept, and refining each dimension would take hours a choice."""
    c = AdaptiveBins(64 * 64 * 3)
    assert c.max_samples == c.min_samples == 16 * 2**20 // (8 * 12_288) == 170
    assert AdaptiveBins(4).max_samples == 4_000 and AdaptiveBins(4).min_samples == 500
    rng = np.random.default_rng(0)
    base = rng.random(12_288)
    rows = [(base + 0.01 * (i % 8), (), ()) for i in range(170)]  # 8 states, each 21 times
    shape = c.choose(rows, rng)  # the one resolution's scan only: seconds, not hours
    grid = Bins(list(shape))
    assert len({grid.key_of(*r) for r in rows}) == 8  # the 8 states told apart (T is 21)


def test_many_independent_dimensions_are_cut_a_few_at_a_time():
    """64 dimensions varying apart (a robot's joints): at any resolution, bins anchored at 0
    split each by sign at least, 2**64 cells, so all 2,000 states are alone. Taking the
    dimensions one at a time, each in two halves by sign at the coarsest resolution, 8 of
    them make about 2**8 = 256 cells, the target (2,000 / 8)."""
    rng = np.random.default_rng(1)
    x = rng.normal(size=(2_000, 64))
    rows = [(r, (), ()) for r in x]
    every = Bins([-2] * 64)  # the coarsest resolution on every dimension
    assert len({every.key_of(*r) for r in rows}) > 1_990
    shape = AdaptiveBins(64).choose(rows, rng)
    cut = [b for b in shape if b != OFF]
    assert 7 <= len(cut) <= 9
    assert 125 <= len({Bins(list(shape)).key_of(*r) for r in rows}) <= 500


def test_recent_sample_keeps_the_last_distinct_states():
    s = RecentSample(3, [b"a", b"b", b"a", b"c", b"d"])
    assert list(s.items) == [b"b", b"c", b"d"]


class Counted(dict):
    """A dict that counts its writes, standing in for the run directory's table."""

    writes = 0

    def __setitem__(self, key, value):
        self.writes += 1
        super().__setitem__(key, value)


def test_the_stored_sample_is_written_once_a_state_and_read_back_in_order():
    table = Counted()
    s = RecentSample(3, stored=table)
    s.extend([b"a", b"b", b"a", b"c", b"d"])
    assert table == {1: b"b", 2: b"c", 3: b"d"} and table.writes == 4  # "a" once, then gone
    s.extend([b"e"])
    assert table == {2: b"c", 3: b"d", 4: b"e"} and table.writes == 5  # one write, one delete
    again = RecentSample(3, stored=table)  # the next session
    assert list(again.items) == [b"c", b"d", b"e"] and table.writes == 5
    again.extend([b"c", b"f"])
    assert list(again.items) == [b"d", b"e", b"f"] and table == {3: b"d", 4: b"e", 5: b"f"}
    again.clear()  # after a choice
    assert table == {} and len(again) == 0


PARAMS = {"first_update": 1_000, "min_samples": 100, "max_samples": 300}


def explore(tmp_path, name: str, frames: int, resume: bool = False):
    config = ExploreConfig(env="MountainCar-v0", seed=3, cell_params=PARAMS)
    store = open_run(None if resume else config, tmp_path / name)
    run(store, RunOptions(frames=frames, workers=1, backend="inline", progress=False,
                          trust_run_dir=True))  # fmt: skip
    return store


def test_rechoices_rekey_keep_best_trajectories_and_are_reported(tmp_path, capsys):
    store = explore(tmp_path, "run", 25_000)
    choices = store.extra("cell_choices")
    assert len(choices) >= 2 and choices[0]["samples"] >= 100
    assert all(c["samples"] == 300 for c in choices[1:])  # later choices: a full sample
    best = [m["best_score"] for m in store.metrics()]
    assert best == sorted(best)  # a re-key never loses the best entry
    assert store.state()["cell_shape"] == choices[-1]["shape"]
    store.close()
    run_dir = str(tmp_path / "run")
    assert main(["replay", run_dir, "--cell", "all"]) == 0  # every cell, after the re-keys
    capsys.readouterr()
    assert main(["report", run_dir, "--json"]) == 0
    s = json.loads(capsys.readouterr().out)
    assert s["cell_choices"] == choices and s["cell_shape"] == choices[-1]["shape"]
    assert all(c["text"].startswith("bits (") for c in choices)  # the floats' bits, in words
    assert f"{len(choices)} choices" in (tmp_path / "run" / "report.md").read_text()


def test_the_report_says_a_shape_chosen_once_in_words():
    from stepstone.report import shape_row

    one = {"frames": 13_486, "shape": [0, -3], "samples": 529, "cells_before": 1_269, "cells": 86}
    row = shape_row({"cell_shape": [0, -3], "cell_choices": [one]})  # stored before "text"
    assert row == "(0, -3); chosen once, at 13,486 frames from 529 states (1,269 -> 86 cells)"


def test_the_report_says_which_values_are_bits_and_which_a_pictures():
    from stepstone.cells.dynamic import DynamicDownscale
    from stepstone.report import shape_row

    text = AdaptiveBins(2, 1).shape_text((5, OFF, 11, 8, 8))
    assert text == "bits (5, off); picture shrunk to 11 x 8 pixels, 8 levels"
    two = AdaptiveBins(0, 2).shape_text((4, 2, 3, 11, 8, 8))
    assert (
        two == "picture shrunk to 4 x 2 pixels, 3 levels; picture shrunk to 11 x 8 pixels, 8 levels"
    )
    assert DynamicDownscale().shape_text((11, 8, 8)) == "shrunk to 11 x 8 pixels, 8 levels"
    # A float picture's thousands of dimensions are counted, not listed (the row was 3,840
    # values three times); an old run's bare shape shows its first values.
    many = AdaptiveBins(40).shape_text((1,) * 30 + (2,) * 10)
    assert many == "bits of 40 float dimensions: 1 for 30, 2 for 10"
    # a robot's few dimensions cut among many: which, by index, or by part and index
    few = AdaptiveBins(40).shape_text((OFF,) * 7 + (-1,) + (OFF,) * 30 + (0, OFF))
    assert few == "bits of 40 float dimensions, 2 cut: [7] -1, [38] 0; the others off"
    maze = AdaptiveBins(20)
    maze.parts = [("achieved_goal", 2), ("observation", 18)]
    text = maze.shape_text((1,) + (OFF,) * 4 + (-2,) + (OFF,) * 14)
    assert text == (
        "bits of 20 float dimensions, 2 cut: achieved_goal[0] 1, observation[3] -2; the others off"
    )
    # a dict's (or tuple's) float parts by name: PointMaze's read "bits (0, 1, 56, off, ...)"
    from stepstone.cells.bins import float_parts

    maze = {"observation": np.zeros(4), "achieved_goal": np.zeros(2), "desired_goal": np.ones(2)}
    named = AdaptiveBins(8)
    named.parts = float_parts(maze)
    assert named.parts == [("achieved_goal", 2), ("desired_goal", 2), ("observation", 4)]
    assert named.shape_text((0, 1, 56, OFF, 0, 1, -1, -1)) == (
        "bits achieved_goal (0, 1), desired_goal (56, off), observation (0, 1, -1, -1)"
    )
    assert float_parts(({"a": 1.5, "n": 3}, np.zeros(2))) == [("[0].a", 1), ("[1]", 2)]
    assert shape_row({"cell_shape": [1] * 40}) == "(1, 1, 1, 1, 1, 1, 1, 1, ... 40 values)"
    one = {"frames": 9, "shape": [5, OFF, 11, 8, 8], "text": text, "samples": 3,
           "cells_before": 4, "cells": 2}  # fmt: skip
    row = shape_row({"cell_shape": one["shape"], "cell_choices": [one]})
    assert row == f"{text}; chosen once, at 9 frames from 3 states (4 -> 2 cells)"
    # dynamic cells before their first choice (first_sample=0): in words, not a bare tuple
    before = {"cell_shape": [11, 8, 8], "cell_choices": [], "cells_kind": "auto",
              "cells_resolved": "dynamic"}  # fmt: skip
    assert shape_row(before) == "shrunk to 11 x 8 pixels, 8 levels (not re-chosen yet)"


def test_a_run_killed_after_a_rechoice_resumes_with_its_schedule(tmp_path, monkeypatch):
    """Killed at a commit after a choice, with the next sample begun, the run resumes with the
    schedule the live run had then: its choices, the frame of the last, the sample the
    next choice will be made from and the entries the choices put aside; it then goes on
    choosing, and every trajectory replays."""
    live, retired, sample = {}, [], []
    commit = runner.Iterations.commit

    def commit_then_die(self):
        row = commit(self)
        if self.adaptive.choices and len(self.adaptive.recent):
            live.update(self.adaptive.extra())
            sample.extend(self.adaptive.recent.items)
            aside = self.engine.archive.retired
            retired.extend(aside.row(i) for i in range(len(aside)))
            raise KeyboardInterrupt
        return row

    monkeypatch.setattr(runner.Iterations, "commit", commit_then_die)
    explore(tmp_path, "run", 25_000).close()
    monkeypatch.undo()
    assert live["cell_choices"] and sample
    store = RunStore.open(tmp_path / "run")
    saved = {k: store.extra(k) for k in live}
    stored = [store.cell_sample[i] for i in sorted(store.cell_sample)]
    aside = store.load_archive().retired
    store.close()
    assert saved == live and stored == sample
    assert retired and [aside.row(i) for i in range(len(aside))] == retired  # and put aside
    store = explore(tmp_path, "run", 25_000, resume=True)
    choices = store.extra("cell_choices")
    assert choices[: len(live["cell_choices"])] == live["cell_choices"] and len(choices) >= 2
    store.close()
    assert main(["replay", str(tmp_path / "run"), "--cell", "all"]) == 0


def test_a_run_that_kept_its_sample_in_the_meta_table_resumes_from_it(tmp_path):
    """Run directories written before the cell_sample table kept the sample as one JSON list
    in the meta table; the first writer that opens one moves it to the table, in order."""
    explore(tmp_path, "run", 3_000).close()
    store = RunStore.open(tmp_path / "run", write=True)
    sample = [store.cell_sample[i] for i in sorted(store.cell_sample)]
    assert sample
    with store.db:  # as the older version left it
        store.db.execute("DROP TABLE cell_sample")
        store.db.execute(
            "INSERT INTO meta VALUES ('extra:cell_sample', ?)",
            (json.dumps([base64.b64encode(s).decode() for s in sample]),),
        )
    store.close()
    store = open_run(None, tmp_path / "run")
    assert [store.cell_sample[i] for i in sorted(store.cell_sample)] == sample
    assert store.extra("cell_sample") is None
    store.close()
    explore(tmp_path, "run", 6_000, resume=True).close()
    assert main(["replay", str(tmp_path / "run"), "--cell", "all"]) == 0
