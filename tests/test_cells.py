"""Cell functions: hand-computed downscaling and the dynamic-downscaling objective."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest

from stepstone import selectors
from stepstone.cells.base import grayscale
from stepstone.cells.downscale import Downscale, area_matrix
from stepstone.cells.dynamic import (
    DynamicDownscale,
    DynamicSchedule,
    decode_frame,
    score,
)
from stepstone.cells.observation import freeze
from stepstone.cells.schedule import RecentSample
from stepstone.config import ExploreConfig
from stepstone.replay import check, replay
from stepstone.runner import RunOptions, open_run, run
from stepstone.trajectories import TrajectoryTree
from stepstone.worker import Worker


def test_area_matrix_averages_with_fractional_edges():
    m = area_matrix(3, 2)  # each output covers 1.5 input pixels
    assert m == pytest.approx(np.array([[2 / 3, 1 / 3, 0], [0, 1 / 3, 2 / 3]]))


def test_downscale_is_block_mean_then_quantised():
    frame = np.array(
        [[0, 0, 255, 255], [0, 0, 255, 255], [64, 64, 128, 128], [64, 64, 128, 128]],
        dtype=np.uint8,
    )
    d = Downscale(width=2, height=2, levels=8)
    assert d.shrink(frame) == pytest.approx(np.array([[0, 255], [64, 128]]))
    # level = floor(mean * 8 / 256): 0 -> 0, 255 -> 7, 64 -> 2, 128 -> 4
    assert d.key_of(frame) == bytes([0, 7, 2, 4])


def test_gamma_below_one_sees_a_dim_sprite_that_even_levels_merge():
    """Montezuma's dark rooms: the player averages to ~20 of 256 in its 11 x 8 block."""

    def sprite_at(row: int, col: int) -> np.ndarray:
        frame = np.zeros((8, 8), dtype=np.uint8)
        frame[row : row + 2, col : col + 2] = 80  # a 4 x 4 block's mean: 80 * 4 / 16 = 20
        return frame

    even, fine = Downscale(2, 2, 8), Downscale(2, 2, 8, gamma=0.5)
    # even levels: floor(8 * 20 / 256) = 0, so every position is the empty frame's cell
    assert even.key_of(sprite_at(0, 0)) == even.key_of(sprite_at(4, 4)) == bytes(4)
    # gamma 0.5: floor(8 * sqrt(20 / 256)) = floor(2.24) = 2, in the sprite's block only
    assert fine.key_of(sprite_at(0, 0)) == bytes([2, 0, 0, 0])
    assert fine.key_of(sprite_at(4, 4)) == bytes([0, 0, 0, 2])
    # the top level is still levels - 1: floor(8 * sqrt(255 / 256)) = 7
    assert fine.key_of(np.full((8, 8), 255, np.uint8)) == bytes([7] * 4)
    with pytest.raises(ValueError, match="gamma"):
        Downscale(gamma=2)


def test_gamma_is_a_cell_param_the_run_uses_and_the_report_names(tmp_path, capsys):
    from stepstone.cli import main
    from stepstone.store.sqlite import RunStore

    run_dir = tmp_path / "run"
    args = ["explore", "montezuma", "--cells", "downscale", "--frames", "2k", "--workers", "1",
            "--backend", "inline"]  # fmt: skip
    assert main([*args, "--cell-param", "gamma=0.5", "--run-dir", str(run_dir)]) == 0
    store = RunStore.open(run_dir)
    worker = Worker.from_config(store.config)
    store.close()
    assert isinstance(worker.cell_fn, Downscale) and worker.cell_fn.gamma == 0.5
    worker.close()
    assert "| cells |" in (report := (run_dir / "report.md").read_text())
    assert "(downscale; gamma=0.5) |" in report
    capsys.readouterr()


def test_dynamic_objective_hand_computed():
    assert score(np.array([5.0]), 2) == 0.0  # one cell: no information
    assert score(np.array([1.0, 1.0]), 2) == pytest.approx(1.0)
    h = -(0.75 * math.log(0.75) + 0.25 * math.log(0.25)) / math.log(2)
    assert score(np.array([3.0, 1.0]), 2) == pytest.approx(h)
    assert score(np.array([1.0, 1.0, 1.0, 1.0]), 2) == pytest.approx(1 / math.sqrt(2))


def test_choose_moves_towards_the_target_number_of_cells():
    # 400 frames, each a distinct flat gray level: 1x1 cells with d levels give d cells.
    frames = [np.full((8, 8), v, dtype=np.uint8) for v in np.linspace(0, 255, 400).astype(int)]
    cells = DynamicDownscale(width=1, height=1, levels=2, split_factor=0.1, iterations=300)
    w, h, d = cells.choose(frames, np.random.default_rng(0))
    n = len({Downscale(w, h, d).key_of(f) for f in frames})
    assert abs(n - 40) <= 10  # target T = 0.1 * 400


def test_choose_finds_the_reference_objectives_optimum():
    """128 distinct flat frames (odd gray values 1..255, none on a level boundary) with the
    reference's split factor 0.125: T = 16 cells. Flat frames look alike at every width and
    height, and 16 levels put exactly 8 frames in each of 16 cells: normalised entropy 1 and
    |n - T| = 0, the objective's maximum 1.0, reached by no other number of levels."""
    frames = [np.full((16, 16), v, dtype=np.uint8) for v in range(1, 256, 2)]
    cells = DynamicDownscale()  # 11 x 8 x 8, the reference's defaults
    assert cells.split_factor * len(frames) == 16
    w, h, d = cells.choose(frames, np.random.default_rng(0))
    counts = Counter(Downscale(w, h, d).key_of(f) for f in frames)
    assert d == 16 and sorted(counts.values()) == [8] * 16
    assert score(np.array(list(counts.values()), dtype=float), 16) == 1.0
    for other in (8, 15, 17, 32):
        n = len({Downscale(w, h, other).key_of(f) for f in frames})
        assert n != 16
    # Too few frames to judge: the shape stays.
    assert cells.choose(frames[:1], np.random.default_rng(0)) == (11, 8, 8)


def test_schedule_is_the_reference_one_with_doubling_intervals():
    """Reference (robustified/phase1_downscaled.sh, goexplore.py maybe_split_dynamic_state):
    first choice after 10,000 steps, then every 10M steps or past 50,000 cells; 4 frames a step.
    In between, here, the interval doubles so that no early choice stands for 40M frames."""
    cells = DynamicDownscale()
    assert (cells.first_update, cells.update_every) == (10_000 * 4, 10_000_000 * 4)
    assert (cells.max_cells, cells.max_samples, cells.sample_prob) == (50_000, 10_000, 0.01)
    chosen, last = [], None
    for frames in range(0, 200_000_001, 10_000):  # one iteration's worth of frames at a time
        if cells.due(frames, last, cells=1_000):
            chosen.append(frames)
            last = frames
    doubling = [40_000 * 2**k for k in range(11)]  # 40k, 80k, ... 40.96M
    assert chosen[: len(doubling)] == doubling
    assert chosen[len(doubling) :] == [40_960_000 + 40_000_000 * k for k in range(1, 4)]
    assert cells.due(50_000_000, 40_960_000, cells=50_001)  # the archive-size trigger
    assert not cells.due(30_000, None, cells=50_001)  # before the first choice: frames only


def test_sources_round_trip_and_recent_frames_bounded():
    frame = (np.arange(210 * 160) % 251).astype(np.uint8).reshape(210, 160)

    class Env:
        def gray(self):
            return frame

    cells = DynamicDownscale()
    src = cells.source(Env())
    assert np.array_equal(decode_frame(src), frame)
    assert cells.key_from_source(src) == cells(Env())
    assert cells.decode(src) is not None and cells.decode(src).shape == (210, 160)  # as is
    # A rendered 400 x 600 frame is judged at about an Atari frame's area (10,000 of them would
    # take 2.4 GB at a choice); the archive's keys are still computed on the whole frame.
    big = np.zeros((400, 600), np.uint8)
    big[:, 300:] = 200

    class Big:
        def gray(self):
            return big

    judged = cells.decode(cells.source(Big()))
    assert judged.shape == (int(400 * 0.3741), int(600 * 0.3741))  # sqrt(33,600 / 240,000)
    assert judged.size <= 210 * 160 and abs(float(judged.mean()) - 100) < 1
    assert cells.key_from_source(cells.source(Big())) == cells(Big())
    recent = RecentSample(3)  # the reference's RotatingSet: distinct, the oldest leaves
    recent.extend([b"a", b"b", b"a", b"c", b"d", b"c", b"e"])
    assert list(recent.items) == [b"c", b"d", b"e"]


def test_stacked_frames_are_one_frame_their_mean():
    frames = np.stack([np.full((16, 20), v, np.uint8) for v in (0, 10, 20, 31)])

    class Env:
        def observe(self):
            return frames

    assert np.array_equal(grayscale(Env()), np.full((16, 20), 15, np.uint8))  # 61 / 4


def test_observation_cells_round_floats_and_fold_negative_zero():
    assert freeze(np.array([0.04, -0.04]), 1) == freeze(np.array([0.0, 0.0]), 1)
    assert freeze(np.array([0.06]), 1) != freeze(np.array([0.0]), 1)
    assert freeze({"b": 1, "a": (2, 3)}, 1) == freeze({"a": (2, 3), "b": 1}, 1)


def test_dynamic_run_rekeys_and_every_trajectory_still_replays(tmp_path):
    params = {"first_update": 10_000, "update_every": 30_000, "iterations": 40, "sample_prob": 0.05}
    config = ExploreConfig(env="montezuma", cells="dynamic", cell_params=params, seed=1)
    store = open_run(config, tmp_path / "run")
    run(store, RunOptions(frames=70_000, workers=1, progress=False))
    assert store.extra("cell_update_frame") >= 30_000  # re-chosen at least twice
    shape = tuple(store.state()["cell_shape"])
    worker = Worker.from_config(config)
    worker.cell_fn.set_shape(shape)
    archive = store.load_archive()
    tree = TrajectoryTree(store.nodes)
    results = list(check(worker, config.seed, tree, archive))
    assert results and all(r.ok for r in results)
    assert len(set(archive.cells)) == len(archive)
    # The entries the re-keys put aside are in the run directory and still reach their state.
    retired = [archive.retired.row(i) for i in range(len(archive.retired))]
    assert retired
    for row in retired:
        cell, score = replay(worker, config.seed, tree.actions(row["node"], row["length"]))
        assert score == row["score"]
        assert cell == worker.cell_fn.key_from_source(archive.sources[row["snap"]])


def test_a_resumed_schedule_samples_a_whole_interval_before_choosing():
    """The sample is not stored: after a resume at 1M frames (last choice at 640k), the next
    choice waits one interval of fresh samples (to 2M) instead of choosing from the first."""

    class Archive(list):
        retired: list = []

    class Engine:
        frames, cell_shape, archive = 1_000_000, (11, 8, 8), Archive([None] * 100)
        rekeyed: list = []

        def rekey(self, shape, key_of_source):
            self.rekeyed.append(shape)

    class Env:
        frame = np.zeros((16, 16), dtype=np.uint8)

        def gray(self):
            return self.frame

    engine, env, cells = Engine(), Env(), DynamicDownscale(iterations=5)
    schedule = DynamicSchedule(cells, engine, {"cell_update_frame": 640_000})
    for frames in range(1_000_000, 2_000_000, 10_000):
        engine.frames = frames
        env.frame = env.frame + np.uint8(1)
        schedule.recent.extend([cells.source(env)])
        assert not schedule.maybe_update()
    engine.frames = 2_000_000
    assert schedule.maybe_update() and schedule.last_update == 2_000_000
    assert len(engine.rekeyed) == 1 and not schedule.recent.items


def test_rekey_keeps_each_cells_best_entry_and_its_trajectory_replays(tmp_path):
    """A coarser shape merges cells; each new cell keeps the best of the entries it merges
    (higher score, then shorter), and that entry's trajectory replays to the new cell."""
    config = ExploreConfig(
        env="montezuma", cells="dynamic", cell_params={"first_update": 10**9}, seed=2
    )
    store = open_run(config, tmp_path / "run")
    run(store, RunOptions(frames=40_000, workers=1, progress=False))
    engine = store.load_engine(selectors.make("count"), cell_shape=(11, 8, 8))
    archive = engine.archive
    worker = Worker.from_config(config)
    coarse = (3, 2, 4)
    worker.cell_fn.set_shape(coarse)
    groups: dict = {}
    for e in archive:
        key = worker.cell_fn.key_from_source(archive.sources[e.snap])
        groups.setdefault(key, []).append(e)
    assert len(groups) < len(archive)  # something merges
    engine.rekey(coarse, worker.cell_fn.key_from_source)
    assert engine.cell_shape == coarse and set(archive.cells) == set(groups)
    for e in archive:
        best = max(groups[e.cell], key=lambda old: (old.score, -old.length))
        assert (e.score, e.length, e.node) == (best.score, best.length, best.node)
    tree = TrajectoryTree(store.nodes)
    replayed = list(check(worker, config.seed, tree, archive))
    assert len(replayed) == len(groups) and all(r.ok for r in replayed)


def test_ram_cells_keys_only_and_paper_bins():
    """Keys (bits 1-3 of Montezuma's inventory byte) count, a sword does not; x in 8-pixel and
    y in 16-pixel bins, as in Go-Explore's domain-knowledge runs."""
    from stepstone.envs.ale_ram import RAM_LAYOUTS, RamCells
    from stepstone.errors import ConfigError

    class FakeAtari:
        def __init__(self):
            self._ram = np.zeros(128, dtype=np.uint8)

        def ram(self):
            return self._ram

    env = FakeAtari()
    lay = RAM_LAYOUTS["montezuma_revenge"]
    env._ram[[lay.level, lay.room, lay.objects, lay.x, lay.y]] = [0, 7, 0b100110, 77, 200]
    # two keys (bits 1, 2) and a sword (bit 5); x 77 // 8 = 9, y 200 // 16 = 12
    assert RamCells(lay)(env) == (0, 7, 0b110, 9, 12)
    assert RamCells(lay, objects="all")(env) == (0, 7, 0b100110, 9, 12)
    assert RamCells(lay, bin_x=16)(env)[3] == 4
    with pytest.raises(ConfigError, match="objects must be one of"):
        RamCells(lay, objects="swords")
    with pytest.raises(ConfigError, match="bins must be >= 1"):
        RamCells(lay, bin_y=0)


def test_the_first_shape_comes_from_play_from_the_start_not_a_one_cell_guess(tmp_path):
    """Centipede's near-black frames are one cell under 11 x 8 x 8; that cell keeps its
    best-scoring state, steps before a lost life, and the run never leaves it. Chosen from ten
    explorations from the start (every step sampled), the first shape separates them."""
    runs = {}
    for name, params in (("guess", {"first_sample": 0}), ("chosen", {})):
        config = ExploreConfig(env="ALE/Centipede-v5", cell_params=params, seed=0)
        store = open_run(config, tmp_path / name)
        runs[name] = (run(store, RunOptions(frames=20_000, workers=1, progress=False)), store)
    (guess, guessed), (chosen, store) = runs["guess"], runs["chosen"]
    assert guess["cells"] == 1 and not guessed.extra("cell_choices")  # the trap, as before
    first = store.extra("cell_choices")[0]
    # 1,000 steps of 4 frames, before any worker ran; about 900 distinct frames
    assert first["frames"] == 4_000 and first["samples"] > 500
    assert tuple(first["shape"]) != (11, 8, 8) and first["cells"] == 2  # the start is back
    assert chosen["cells"] > 100
    # A starting shape given is used until the first due choice, as before
    given = DynamicDownscale(width=11, height=8, levels=8)
    assert given.first_sample == 0 and DynamicDownscale().first_sample == 1_000


def test_the_first_choice_is_said_as_it_starts_and_when_it_is_made(tmp_path, capsys):
    """It takes seconds before the first status line (6.6 s on Centipede): a user sees why."""
    from stepstone.cli import main

    args = ["explore", "montezuma", "--frames", "3k", "--workers", "1"]
    assert main([*args, "--run-dir", str(tmp_path / "r")]) == 0
    lines = capsys.readouterr().err.splitlines()
    starts = [i for i, t in enumerate(lines) if t.startswith("choosing the first cells")]
    chosen = [i for i, t in enumerate(lines) if t.startswith("cells chosen: ")]
    assert starts == [0] and len(chosen) == 1 and "from up to 1,000 steps" in lines[0]
    assert "sampled states at" in lines[chosen[0]]
    # resumed, the shape is the stored one: nothing is chosen again, nor said
    assert main(["resume", str(tmp_path / "r"), "--frames", "4k"]) == 0
    said = capsys.readouterr().err
    assert "choosing the first cells" not in said and "cells chosen" not in said


def test_atari_auto_cells_are_dynamic_downscaling_and_older_runs_keep_fixed_frames():
    """Since cells_auto 5 Atari's `--cells auto` is dynamic downscaling (bench/README.md,
    "Atari's default cells on fourteen games"); a run stored before keeps fixed 11 x 8 x 8
    frames and the clustered selector it ran with, on resume as in a new process."""
    import json

    new = ExploreConfig("montezuma")
    assert new.cells_auto == 5 and new.selector == "count"
    worker = Worker.from_config(new)
    assert type(worker.cell_fn) is DynamicDownscale and worker.cell_fn.shape == (11, 8, 8)
    worker.close()
    stored = json.loads(new.to_json())
    stored.update(cells_auto=4, selector="clustered")
    before = ExploreConfig.from_json(json.dumps(stored))
    assert before.cells_auto == 4 and before.selector == "clustered"
    worker = Worker.from_config(before)
    assert type(worker.cell_fn) is Downscale and (worker.cell_fn.width, worker.cell_fn.height,
                                                 worker.cell_fn.levels) == (11, 8, 8)  # fmt: skip
    worker.close()
    # Shards cannot re-choose a shape against the whole archive: a sharded run's pictures
    # are fixed frames, as Atari's sharded runs were before
    sharded = ExploreConfig("montezuma", shards=2)
    assert sharded.selector == "count"
    worker = Worker.from_config(sharded)
    assert type(worker.cell_fn) is Downscale and worker.adaptive is None
    worker.close()
