"""Selection weights against the formula written out by hand."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from stepstone.archive import Archive
from stepstone.errors import ConfigError
from stepstone.selectors import CountBased, Knapsack, Uniform, make


def archive_with(counts: list[tuple[int, int, int]], terminal=()) -> Archive:
    a = Archive()
    for i, (chosen, since_new, seen) in enumerate(counts):
        a.offer(f"c{i}", 0.0, 0, 0, b"", terminal=i in terminal)
        a.times_chosen[i], a.times_chosen_since_new[i], a.times_seen[i] = chosen, since_new, seen
    return a


def test_count_based_weights_hand_computed():
    a = archive_with([(0, 0, 0), (4, 4, 16)])
    w = CountBased().weights(a)
    # 1 + 0.1 / sqrt(0 + 0.001) + 0 * ... + 0.3 / sqrt(0 + 0.001) + 3 * 1e-5
    fresh = 1 + 0.1 / 0.001**0.5 + 0.3 / 0.001**0.5 + 3e-5
    # 1 + 0.1 / sqrt(4.001) + 0.3 / sqrt(16.001) + 3 * 1e-5
    used = 1 + 0.1 / 4.001**0.5 + 0.3 / 16.001**0.5 + 3e-5
    assert np.allclose(w, [fresh, used])
    assert w[0] > 10 * w[1]


def test_uniform_and_registry():
    a = archive_with([(0, 0, 0)] * 3)
    assert Uniform().weights(a).tolist() == [1.0, 1.0, 1.0]
    assert isinstance(make("count"), CountBased)


def test_terminal_entries_are_never_selected():
    a = archive_with([(0, 0, 0), (9, 9, 9), (0, 0, 0)], terminal={0, 2})
    picks = CountBased().select(a, 200, np.random.default_rng(0))
    assert set(picks.tolist()) == {1}


def test_selection_is_reproducible_and_follows_weights():
    a = archive_with([(0, 0, 0), (100, 100, 100)])
    p1 = CountBased().select(a, 2000, np.random.default_rng(7))
    p2 = CountBased().select(a, 2000, np.random.default_rng(7))
    assert np.array_equal(p1, p2)
    w = CountBased().weights(a)
    share = (p1 == 0).mean()
    assert abs(share - w[0] / w.sum()) < 0.03


def knapsack_archive(stats: list[tuple[int, int]]) -> Archive:
    """Cells with (discoveries, times_chosen)."""
    a = Archive()
    for i, (d, t) in enumerate(stats):
        a.offer(f"c{i}", 0.0, 0, 0, b"")
        a.discoveries[i], a.times_chosen[i] = d, t
    return a


def test_knapsack_rates_and_greedy_hand_computed():
    a = knapsack_archive([(0, 0), (1, 4)])  # q = 1/2 and 2/6
    assert np.allclose(Knapsack().rates(a), [0.5, 1 / 3])
    # marginal gains: A 0.5, 0.25, 0.125; B 0.333, 0.222 -> 3 picks: A, B, A; 4th: B
    rng = np.random.default_rng(0)
    assert sorted(Knapsack().select(a, 3, rng).tolist()) == [0, 0, 1]
    assert sorted(Knapsack().select(a, 4, rng).tolist()) == [0, 0, 1, 1]


def test_knapsack_skips_terminal_cells_and_pays_for_replay():
    a = knapsack_archive([(5, 5), (0, 0), (0, 0)])
    a.terminal[0] = True
    a.length[1] = 99  # returning to cell 1 by replay costs 99 steps
    picks = Knapsack(return_cost_per_step=1.0).select(a, 3, np.random.default_rng(0))
    assert 0 not in picks.tolist() and picks.tolist().count(2) >= 2


@given(
    st.lists(st.tuples(st.integers(0, 5), st.integers(0, 9)), min_size=1, max_size=4),
    st.integers(1, 5),
)
def test_knapsack_greedy_is_optimal(stats, n):
    stats = [(min(d, t), t) for d, t in stats]
    a = knapsack_archive(stats)
    ks = Knapsack()
    q = ks.rates(a)
    picks = ks.select(a, n, np.random.default_rng(0))

    def value(alloc) -> float:
        return sum(1 - (1 - q[i]) ** k for i, k in enumerate(alloc))

    counts = [picks.tolist().count(i) for i in range(len(stats))]
    best = max(value(c) for c in itertools.product(range(n + 1), repeat=len(stats)) if sum(c) == n)
    assert len(picks) == n and value(counts) >= best - 1e-12


def test_domain_terms_hand_computed():
    """Frontier neighbours, most and fewest objects held and the lower-level factor, written out."""
    a = Archive()
    cells = [
        (0, 1, 0b0, 5, 5),  # neighbours at x 4 and x 6 exist; y 4 and y 6 missing; fewer keys
        (0, 1, 0b0, 4, 5),  # x 3 missing, x 5 present; both vertical missing; alone here
        (0, 1, 0b0, 6, 5),
        (0, 1, 0b1, 5, 5),  # holds a key at the same place: all four neighbours missing
        (1, 7, 0b0, 0, 0),  # the highest level: all four missing, alone at its position
    ]
    for c in cells:
        a.offer(c, 0.0, 0, 0, b"")
    a.times_seen[: len(cells)] = 1_000_000  # make the count part ~1 so the domain part shows
    a.times_chosen[: len(cells)] = 1_000_000
    sel = make("domain")
    count = CountBased().weights(a)
    # 10: no cell at the same place holds more keys; 0.5: none holds fewer.
    expected_additive = [
        0.1 * 2 + 0.5,
        0.3 * 1 + 0.1 * 2 + 10 + 0.5,
        0.3 * 1 + 0.1 * 2 + 10 + 0.5,
        0.3 * 2 + 0.1 * 2 + 10,
        0.3 * 2 + 0.1 * 2 + 10 + 0.5,
    ]
    level = [0.1, 0.1, 0.1, 0.1, 1.0]
    assert np.allclose(sel.weights(a), (count + expected_additive) * level)


def test_domain_selector_refuses_other_cells():
    a = archive_with([(0, 0, 0)])
    with pytest.raises(ConfigError, match="--cells ram"):
        make("domain").weights(a)


def test_cells_as_vectors():
    from stepstone.cells.observation import freeze
    from stepstone.selectors.vectors import vector, vectors

    assert vector((3, 4)).tolist() == [3.0, 4.0]
    assert vector(bytes([0, 7, 255])).tolist() == [0.0, 7.0, 255.0]
    assert vector(freeze(np.array([0.25, -1.5]), 2)).tolist() == [0.25, -1.5]
    text = vector("room: kitchen | inventory: key")
    assert text.sum() == 5 and np.array_equal(text, vector("ROOM: kitchen |  inventory: key"))
    assert vectors([(1.0,), (1.0, 2.0)]).tolist() == [[1.0, 0.0], [1.0, 2.0]]
    with pytest.raises(ConfigError, match="count, uniform or knapsack"):
        vector((1, frozenset({2})))


def test_novelty_weight_is_mean_distance_to_k_nearest():
    a = Archive()
    for c in [(0.0,), (1.0,), (3.0,), (7.0,)]:
        a.offer(c, 0.0, 0, 0, b"")
    w1 = make("novelty").__class__(k=1).weights(a)
    assert np.allclose(w1, [1, 1, 2, 4], atol=1e-5)
    w2 = make("novelty").__class__(k=2).weights(a)
    assert np.allclose(w2, [(1 + 3) / 2, (1 + 2) / 2, (2 + 3) / 2, (4 + 6) / 2], atol=1e-5)


def test_novelty_kept_between_calls_equals_the_tree_built_anew():
    """Cells added a few at a time (one call after each batch) give the same weights as a
    selector that meets the whole archive at once, down to fewer cells than k."""
    rng = np.random.default_rng(3)
    a, kept = Archive(), make("novelty")
    for batch in [2, 1, 3, 9, 1, 40, 7]:
        for _ in range(batch):
            a.offer(tuple(rng.normal(size=3).round(3).tolist()), 0.0, 0, 0, b"")
        assert np.allclose(kept.weights(a), make("novelty").weights(a))
    a.offer((1.0, 2.0, 3.0, 4.0), 0.0, 0, 0, b"")  # a wider cell: every distance changes
    assert np.allclose(kept.weights(a), make("novelty").weights(a))


@pytest.mark.parametrize("name", ["rnd", "rdd"])
def test_intrinsic_value_is_high_where_visits_are_few(name):
    """Trained on the cells in proportion to visits, the predictor learns the familiar ones."""
    rng = np.random.default_rng(0)
    a = Archive()
    for _ in range(40):
        a.offer(tuple(rng.normal(size=4).round(3).tolist()), 0.0, 0, 0, b"")
    familiar, rare = np.arange(0, 20), np.arange(20, 40)
    a.times_seen[familiar] = 5_000
    sel = make(name)
    for _ in range(300):
        w = sel.weights(a)
    assert w[rare].mean() > 3 * w[familiar].mean()
    picks = sel.select(a, 1000, rng)
    assert np.isin(picks, rare).mean() > 0.7


def test_cell_vectors_are_made_once_and_equal_vectors_as_the_archive_grows():
    from stepstone.selectors.vectors import CellVectors, vectors

    cells: list = [(1.0,), (2.0, 3.0)]
    made = CellVectors()
    assert made(cells).tolist() == [[1.0, 0.0], [2.0, 3.0]]
    for c in [(4.0,), (5.0, 6.0, 7.0), *[(float(i),) for i in range(9)]]:  # wider, then more rows
        cells.append(c)
        assert np.array_equal(made(cells), vectors(cells))
    assert made(cells[:3]).tolist() == [[1.0, 0.0], [2.0, 3.0], [4.0, 0.0]]  # a new list: anew


def test_intrinsic_inputs_follow_the_archive_with_statistics_taken_again_at_each_hundredth():
    """Between refreshes a new cell is normalised by the kept mean and spread; once the archive
    has grown by more than a hundredth every cell is normalised by the statistics of all."""
    rng = np.random.default_rng(1)
    a = Archive()
    for _ in range(200):
        a.offer(tuple(rng.normal(size=3).round(4).tolist()), 0.0, 0, 0, b"")
    sel = make("rdd")
    sel.weights(a)
    x0 = np.array(a.cells[:200])
    mean, spread = x0.mean(axis=0), x0.std(axis=0) + 1e-8
    a.offer((2.0, 2.0, 2.0), 0.0, 0, 0, b"")
    sel.weights(a)
    x, f = sel._inputs(a, sel._nets[0])
    assert np.allclose(x[200], (2.0 - mean) / spread)
    assert np.allclose(f, sel._nets[0](x))
    for _ in range(2):
        a.offer(tuple(rng.normal(size=3).tolist()), 0.0, 0, 0, b"")
    sel.weights(a)  # 203 > 1.01 * 200
    x, f = sel._inputs(a, sel._nets[0])
    everything = np.array(a.cells)
    fresh = (everything - everything.mean(axis=0)) / (everything.std(axis=0) + 1e-8)
    assert np.allclose(x, np.clip(fresh, -5, 5)) and np.allclose(f, sel._nets[0](x))


def test_tuples_with_names_and_none_are_finite_vectors():
    from stepstone.selectors.vectors import vector

    v = vector((9, 5, 1, None))
    assert v.tolist() == [9.0, 5.0, 1.0, -1.0]
    key = vector((9, 5, 1, ("key", "yellow")))
    assert len(key) == 5 and np.isfinite(key).all() and 0 <= key[3] < 1


def test_dict_observations_as_vectors():
    from stepstone.cells.observation import freeze
    from stepstone.selectors.vectors import vector

    obs = {"image": np.full((2, 2, 1), 3, dtype=np.uint8), "direction": 2, "mission": "get key"}
    assert vector(freeze(obs, 1)).tolist() == [2.0, 3.0, 3.0, 3.0, 3.0]  # mission left out


def test_domain_released_weights_hand_computed():
    """The released script's weights: 1/sqrt(seen+1), no constant, no chosen term."""
    a = Archive()
    cells = [(0, 1, 0b0, 5, 5), (0, 1, 0b0, 6, 5), (0, 1, 0b10, 5, 5)]
    for c in cells:
        a.offer(c, 0.0, 0, 0, b"")
    a.times_seen[:3] = [3, 0, 8]
    a.times_chosen[:3] = [100, 100, 100]  # ignored
    # horizontal 0.1 per missing neighbour; "most objects" 1 where no cell here holds more.
    expected = [
        1 / np.sqrt(4) + 0.1 * 1,
        1 / np.sqrt(1) + 0.1 * 1 + 1.0,
        1 / np.sqrt(9) + 0.1 * 2 + 1.0,
    ]
    assert np.allclose(make("domain-released").weights(a), expected)


def test_times_seen_weights_follow_the_released_code():
    """Reference: randselectors.py, WeightedSelector.compute_weight = weight / (v + 1) ** power,
    with phase1_downscaled.sh's --seen_weight=1.0 and main.py's default --seen_power=0.5 (every
    other weight 0): seen 0, 3, 8, 99 weigh 1, 1/2, 1/3, 1/10, whatever was chosen or found."""
    a = Archive()
    for cell, seen in ((b"\x01\x02", 0), ((3, 4, 5), 3), ("a room", 8), (7, 99)):  # any cell kind
        a.offer(cell, 0.0, 0, 0, b"")
        a.times_seen[a.index[cell]] = seen
    a.times_chosen[:4] = [50, 0, 7, 1]
    a.discoveries[:4] = [9, 0, 0, 1]
    w = make("seen").weights(a)
    assert np.allclose(w, [1.0, 0.5, 1 / 3, 0.1])
    picks = make("seen").select(a, 20_000, np.random.default_rng(0))
    share = np.bincount(picks, minlength=4) / len(picks)
    assert np.allclose(share, np.array([1.0, 0.5, 1 / 3, 0.1]) / (1 + 0.5 + 1 / 3 + 0.1), atol=0.01)


def test_times_seen_refuses_a_weight_that_selects_nothing():
    with pytest.raises(ConfigError, match="weight must be > 0 and power >= 0"):
        make("seen", weight=0.0)


@pytest.mark.parametrize("name", ["rnd", "rdd"])
def test_a_diverged_predictor_is_rebuilt_not_a_crash(name):
    a = Archive()
    for i in range(5):
        a.offer((i, 2 * i), 0.0, 0, 0, b"")
    sel = make(name)
    sel.weights(a)
    diverged = sel._nets[1]
    diverged.w2[:] = 1e200  # the error overflows to inf, then nan
    w = sel.weights(a)
    assert np.isfinite(w).all() and (w > 0).all() and sel._nets[1] is not diverged
    assert len(set(sel.select(a, 50, np.random.default_rng(0)).tolist())) > 1


def frames_archive(frames: list[bytes], terminal=(), scores=None) -> Archive:
    a = Archive()
    for i, f in enumerate(frames):
        a.offer(f, scores[i] if scores else 0.0, 0, 0, b"", terminal=i in terminal)
    return a


def test_clustered_gives_each_cluster_of_look_alike_cells_the_same_share():
    """Nine frames of one place (the agent moved: 1 of 40 pixels differs) and two of
    another (all pixels differ), one of them terminal: under count weights the first place
    gets 9 of 10 choices, clustered gives each place half, the terminal frame's share going to
    the other frame of its place."""
    room_a, room_b = bytes(40), bytes([7] * 40)
    moved = [room_a[:i] + b"\x03" + room_a[i + 1 :] for i in range(8)]
    frames = [room_a, *moved, room_b, room_b[:-1] + b"\x01"]
    a = frames_archive(frames, terminal={10})
    sel = make("clustered")
    assert sel.clusters(a).tolist() == [0] * 9 + [1, 1]
    picks = sel.select(a, 4000, np.random.default_rng(0))
    assert abs((picks >= 9).mean() - 0.5) < 0.03
    assert 10 not in picks.tolist()
    count_picks = CountBased().select(a, 4000, np.random.default_rng(0))
    assert (count_picks >= 9).mean() < 0.15  # the one live cell of room B: 1 of 10


def test_clustered_follows_new_cells_and_a_rekeyed_archive():
    a = frames_archive([bytes(40)])
    sel = make("clustered", threshold=0.1)
    assert sel.clusters(a).tolist() == [0]
    a.offer(bytes([1] * 3 + [0] * 37), 0.0, 0, 0, b"")  # 3 of 40 differ: within 0.1
    a.offer(bytes([1] * 5 + [0] * 35), 0.0, 0, 0, b"")  # 5 of 40: a new cluster
    assert sel.clusters(a).tolist() == [0, 0, 1]
    # Archive.rekey gives the archive a new key list, as another archive has: start again
    assert sel.clusters(frames_archive([bytes([2] * 10), bytes(10)])).tolist() == [0, 1]


def test_clustered_refuses_a_threshold_outside_zero_one():
    with pytest.raises(ConfigError, match="threshold"):
        make("clustered", threshold=1.5)
    with pytest.raises(ConfigError, match="highest-scoring"):
        make("clustered", top=-0.1)


def test_clustered_top_gives_a_share_of_each_cluster_to_its_highest_scores():
    """Place A: eight frames at score 0, one at 100 and a terminal one at 200; place B: two
    frames at 5 and 7. With top=0.5 half of A's share goes to its best live frame, the one at
    100 (28% of all choices, against 6% with top=0), and half of B's to its frame at 7."""
    room_a, room_b = bytes(40), bytes([7] * 40)
    frames = [room_a[:i] + b"\x03" + room_a[i + 1 :] for i in range(10)]
    frames += [room_b, room_b[:-1] + b"\x01"]
    scores = [0.0] * 8 + [100.0, 200.0, 5.0, 7.0]
    a = frames_archive(frames, terminal={9}, scores=scores)
    even = make("clustered").weights(a)
    assert even[:9] == pytest.approx([1 / 9] * 9) and even[10:] == pytest.approx([0.5, 0.5])
    w = make("clustered", top=0.5).weights(a)
    assert w[8] == pytest.approx(0.5 / 9 + 0.5) and w[:8] == pytest.approx([0.5 / 9] * 8)
    assert w[9] == 0  # terminal: neither in its cluster's share nor in its top
    assert w[10:] == pytest.approx([0.25, 0.75])
    assert w.sum() == pytest.approx(2.0)
    picks = make("clustered", top=0.5).select(a, 8000, np.random.default_rng(0))
    assert abs((picks == 8).mean() - (0.5 / 9 + 0.5) / 2) < 0.02


def test_clustered_joins_the_nearest_cluster_and_the_newest_of_equals():
    base = bytes(20)
    a = frames_archive([
        base,
        bytes([5] * 4 + [0] * 16),  # 4 of 20 differ from the first: a second cluster
        bytes([5] * 1 + [0] * 19),  # 1 from the first, 3 from the second: the first
        bytes([5] * 2 + [0] * 18),  # 2 from either leader: the newer, the second
    ])  # fmt: skip
    assert make("clustered", threshold=0.1).clusters(a).tolist() == [0, 1, 0, 1]


def test_auto_is_clustered_on_downscaled_frames_in_one_archive_and_count_elsewhere(
    tmp_path, capsys
):
    """--selector auto (the default) is resolved when the configuration is made and stored by
    name: a run keeps the selector it ran with, whatever auto means later."""
    from stepstone.cli import main
    from stepstone.config import ExploreConfig
    from stepstone.store.sqlite import RunStore

    assert ExploreConfig("ALE/Pitfall-v5", cells="downscale", selector="auto").selector == (
        "clustered"
    )
    # Atari's auto cells: dynamic downscaling since cells_auto 5, fixed downscaling before
    assert ExploreConfig("ALE/Pitfall-v5").selector == "count"
    assert ExploreConfig("ALE/Pitfall-v5", cells_auto=4).selector == "clustered"
    for other in ({"cells": "ram"}, {"cells": "dynamic"}, {"shards": 2}):
        assert ExploreConfig("montezuma", **other).selector == "count"
    assert ExploreConfig("CartPole-v1").selector == "count"
    assert ExploreConfig("montezuma", selector="seen").selector == "seen"
    run_dir = tmp_path / "run"
    args = ["explore", "montezuma", "--cells", "downscale", "--frames", "3k", "--workers", "1",
            "--backend", "inline"]  # fmt: skip
    assert main([*args, "--run-dir", str(run_dir), "--no-progress"]) == 0
    store = RunStore.open(run_dir)
    assert store.config.selector == "clustered" and store.metrics()[-1]["frames"] >= 3000
    store.close()
    assert "| selector | clustered |" in (run_dir / "report.md").read_text()
    capsys.readouterr()


def test_selector_params_are_kept_with_the_run_reported_and_resumed(tmp_path, capsys):
    """--selector-param defines the run as --cell-param does: stored, named in the report,
    kept by resume; a run without it stores its configuration as before."""
    from stepstone.cli import main
    from stepstone.config import ExploreConfig
    from stepstone.store.sqlite import RunStore

    assert "selector_params" not in ExploreConfig("montezuma").to_json()
    run_dir = tmp_path / "run"
    args = ["--workers", "1", "--backend", "inline", "--no-progress"]
    assert main(["explore", "montezuma", "--cells", "downscale", "--frames", "3k",
                 "--selector-param", "top=0.5", "--run-dir", str(run_dir), *args]) == 0  # fmt: skip
    assert "| selector | clustered; top=0.5 |" in (run_dir / "report.md").read_text()
    assert main(["resume", str(run_dir), "--frames", "6k", *args]) == 0
    store = RunStore.open(run_dir)
    assert store.config.selector_params == {"top": 0.5}
    assert store.metrics()[-1]["frames"] >= 6000
    store.close()
    capsys.readouterr()


def test_clustered_by_score_gives_each_score_of_a_place_its_own_share():
    """Place A: eight frames at score 300 (a door opened, a key spent) and two at 200 (both
    keys kept); place B: two frames at 5. Clustered alone gives A's ten frames half of the
    choices, the two at 200 a tenth of that; split by score each (place, score) pair gets a
    third: the two-key frames get 1/6 each, not 1/20."""
    room_a, room_b = bytes(40), bytes([7] * 40)
    frames = [room_a[:i] + b"\x03" + room_a[i + 1 :] for i in range(10)]
    frames += [room_b, room_b[:-1] + b"\x01"]
    a = frames_archive(frames, scores=[300.0] * 8 + [200.0] * 2 + [5.0, 5.0])
    assert make("clustered").weights(a)[8:10] == pytest.approx([0.1, 0.1])
    sel = make("clustered", by_score=True)
    w = sel.weights(a)
    assert w[:8] == pytest.approx([1 / 8] * 8) and w[8:] == pytest.approx([0.5] * 4)
    assert sel.clusters(a).tolist() == [0] * 10 + [1, 1]  # the look-alike clusters stay
    picks = sel.select(a, 6000, np.random.default_rng(0))
    assert abs(np.isin(picks, [8, 9]).mean() - 1 / 3) < 0.02
    # A better trajectory moves a frame to another score; a new frame comes at a third one
    assert a.offer(frames[0], 400.0, 0, 0, b"") and not a.offer(room_b, 1.0, 0, 0, b"")
    a.offer(room_b[:-2] + b"\x01\x01", 9.0, 0, 0, b"")
    w = sel.weights(a)
    assert w[0] == pytest.approx(1.0) and w[1:8] == pytest.approx([1 / 7] * 7)
    assert w[10:] == pytest.approx([0.5, 0.5, 1.0])


def test_clustered_by_score_is_true_or_false_and_not_with_top(tmp_path, capsys):
    with pytest.raises(ConfigError, match="by_score takes true or false"):
        make("clustered", by_score="no")
    with pytest.raises(ConfigError, match="one of them"):
        make("clustered", by_score=True, top=0.5)
    from stepstone.cli import main

    run_dir = tmp_path / "run"
    args = ["explore", "montezuma", "--selector", "clustered", "--frames", "2k",
            "--selector-param", "by_score=yes"]  # fmt: skip
    assert main([*args, "--run-dir", str(run_dir), "--no-progress"]) == 2
    assert 'by_score takes true or false, not "yes"' in capsys.readouterr().err
    assert not run_dir.exists()
