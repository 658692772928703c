"""Cell functions: hand-computed downscaling and the dynamic-downscaling objective."""

from __future__ import annotations

import math

import numpy as np
import pytest

from stepstone.cells.downscale import Downscale, area_matrix
from stepstone.cells.dynamic import DynamicDownscale, RecentFrames, decode_frame, score
from stepstone.cells.observation import freeze
from stepstone.config import ExploreConfig
from stepstone.replay import check
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


def test_sources_round_trip_and_recent_frames_bounded():
    frame = (np.arange(210 * 160) % 251).astype(np.uint8).reshape(210, 160)

    class Env:
        def gray(self):
            return frame

    cells = DynamicDownscale()
    src = cells.source(Env())
    assert np.array_equal(decode_frame(src), frame)
    assert cells.key_from_source(src) == cells(Env())
    recent = RecentFrames(3)
    recent.extend([b"a", b"b", b"c", b"d", b"e"])
    assert len(recent.items) == 3 and set(recent.items) <= {b"a", b"b", b"c", b"d", b"e"}


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
    results = list(check(worker, config.seed, TrajectoryTree(store.nodes), archive))
    assert results and all(r.ok for r in results)
    assert len(set(archive.cells)) == len(archive)


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
