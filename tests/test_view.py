"""``stepstone view``: the page's data, its map per kind of cells, and the page in a browser."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from stepstone.cli import main
from stepstone.store.sqlite import RunStore
from stepstone.view import descriptor, frame_of, label, projection, run_length

CHROMIUM = Path("/usr/bin/chromium")
BROWSER_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--no-first-run", "--disable-component-update", "--disable-sync", "--window-size=1400,1600",
)  # fmt: skip


def explore(tmp_path: Path, env: str, frames: str, *extra: str) -> Path:
    run_dir = tmp_path / "run"
    args = ["explore", env, "--frames", frames, "--backend", "inline", "--workers", "1"]
    assert main([*args, *extra, "--run-dir", str(run_dir), "--no-progress"]) == 0
    return run_dir


def page_data(page: Path) -> dict:
    """The JSON the page carries (what its script draws)."""
    text = page.read_text()
    match = re.search(r'<script type="application/json" id="data">(.*?)</script>', text, re.S)
    assert match is not None
    return json.loads(match.group(1))


def test_descriptors_of_each_kind_of_cell():
    frozen = ("<f4", (3,), np.array([0.5, -1.0, 2.0], dtype="<f4").tobytes())  # observation
    assert descriptor(frozen).tolist() == [0.5, -1.0, 2.0]
    assert label(frozen) == "[0.5, -1, 2]"
    assert descriptor(bytes([3, 0, 7])).tolist() == [3, 0, 7]  # downscaled frame
    assert descriptor((1, 2, None, 4)).tolist() == [1, 2, -1, 4]  # None (nothing held): -1
    assert descriptor("You are in a kitchen.") is None
    assert descriptor((1, ("key", "yellow"))) is None


def test_projection_keeps_the_direction_that_varies():
    # points on the line y = 2x in 3-D: the first component orders them, the second is 0
    t = np.array([-2.0, -1.0, 0.0, 1.0, 2.0])
    xy = projection(np.column_stack([t, 2 * t, np.zeros(5)]))
    assert np.allclose(np.abs(xy[:, 0]), np.abs(t) * np.sqrt(5))
    assert np.allclose(xy[:, 1], 0)
    assert np.all(np.diff(xy[:, 0]) > 0) or np.all(np.diff(xy[:, 0]) < 0)
    # a huge column the same in every row (a float's bin index at 56 bits) changes nothing
    rng = np.random.default_rng(0)
    many = rng.integers(-3, 4, size=(427, 6)).astype(np.float64)
    many[:, 2] = -8294307760870168.0  # its mean, rounded, is not this: every x was -68
    xy = projection(many)
    assert np.ptp(xy[:, 0]) > 1 and np.ptp(xy[:, 1]) > 1


def test_pictures_of_every_kind_are_drawn_and_symbols_are_not():
    gray = np.arange(84 * 84, dtype=np.uint8).reshape(84, 84)
    rgb = np.stack([gray, gray // 2, gray // 3], axis=-1)
    assert np.array_equal(frame_of(rgb), rgb)
    assert np.array_equal(frame_of(gray)[..., 1], gray)  # gray as three equal channels
    stack = np.stack([gray, gray])  # FrameStackObservation: their mean
    assert np.array_equal(frame_of(stack)[..., 0], gray)
    parts = {"state": np.zeros(4), "pixels": np.dstack([rgb, gray])}  # RGBA among parts
    assert np.array_equal(frame_of(parts), rgb)
    assert np.array_equal(frame_of((np.zeros(2), gray))[..., 2], gray)
    for symbols in (np.zeros((7, 7, 3), np.uint8), np.zeros(4), "a room", {"pos": 3}):
        assert frame_of(symbols) is None


def test_actions_are_run_length_encoded():
    actions = np.array([2, 2, 2, 0, 1, 1], dtype=np.uint8)
    assert run_length(actions, ["noop", "fire", "right"]) == "right x3, noop, fire x2"
    assert run_length(actions[:0], None) == "(none: the reset state)"


def view(run_dir: Path, *options: str) -> tuple[Path, dict]:
    assert main(["view", str(run_dir), *options]) == 0
    return run_dir / "view.html", page_data(run_dir / "view.html")


@pytest.fixture(scope="module")
def rooms_page(tmp_path_factory) -> tuple[Path, dict]:
    run_dir = explore(tmp_path_factory.mktemp("rooms"), "montezuma", "6k", "--cells", "ram")
    return view(run_dir, "--max-frames", "3")


@pytest.fixture(scope="module")
def points_page(tmp_path_factory) -> tuple[Path, dict]:
    run_dir = explore(
        tmp_path_factory.mktemp("points"), "CartPole-v1", "2k", "--cell-param", "decimals=2"
    )
    return view(run_dir)


@pytest.fixture(scope="module")
def grid_page(tmp_path_factory) -> tuple[Path, dict]:
    pytest.importorskip("minigrid")
    return view(explore(tmp_path_factory.mktemp("grid"), "MiniGrid-DoorKey-5x5-v0", "8k"))


def test_montezuma_map_is_rooms_by_level(rooms_page):
    page, data = rooms_page
    cells = RunStore.open(page.parent).load_archive().cells
    assert len(data["cells"]) == len(cells)
    assert data["map"]["kind"] == "rooms"
    assert [(r["level"], r["room"]) for r in data["map"]["rooms"]] == [(0, 1)]  # the first room
    assert data["map"]["rooms"][0]["cells"] == len(cells)
    assert len(data["pictures"]) == 3  # --max-frames: the best cell first
    best = data["animations"][0]
    assert best["title"] == "best trajectory"
    assert best["id"] in {int(i) for i in data["pictures"]}
    assert all(p["img"].startswith("data:image/png;base64,") for p in data["pictures"].values())
    assert best["steps"][0] == 0 and best["steps"][-1] == data["summary"]["best_length"]
    assert len(best["frames"]) == len(best["steps"])


def test_vector_observations_are_projected(points_page):
    _, data = points_page
    assert data["map"]["kind"] == "projection"
    assert len(data["map"]["points"]) == len(data["cells"]) == data["summary"]["cells"]


def test_one_number_a_cell_is_drawn_against_the_score(tmp_path):
    """A Discrete state projected on two components was a row of dots along the bottom; each
    cell's state number goes across and its score up, the start named as the best entry."""
    run_dir = explore(tmp_path, "CliffWalking-v1", "3k")
    _, data = view(run_dir, "--max-frames", "2")
    m = data["map"]
    assert m["kind"] == "projection" and m["note"].startswith("each cell's value (across)")
    archive = RunStore.open(run_dir).load_archive()
    states = [int(np.frombuffer(c[2], "<i8")[0]) for c in archive.cells]
    assert [(x, y) for _, x, y in m["points"]] == list(
        zip(states, archive.score[: len(states)].tolist(), strict=True)
    )
    assert data["best_row"] == "the reset state: no trajectory found scores above it"


def test_bad_max_frames_is_one_line(points_page, capsys):
    page, _ = points_page
    assert main(["view", str(page.parent), "--max-frames", "-1"]) == 2
    assert capsys.readouterr().err.strip() == "stepstone: error: --max-frames must be >= 0, got -1"


def test_a_port_out_of_range_or_taken_is_one_line(points_page, capsys):
    """--port 99999 and a port in use were tracebacks (OverflowError, OSError)."""
    import socket

    page, _ = points_page
    assert main(["view", str(page.parent), "--serve", "--port", "99999"]) == 2
    assert "--port is a TCP port, 0 to 65535" in capsys.readouterr().err
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["view", str(page.parent), "--serve", "--port", str(port)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"cannot serve on 127.0.0.1:{port}" in err[0]
    assert err[0].endswith("give another --port, or --port 0 for any free one")


def test_grid_world_map_colours_the_grid(grid_page):
    _, data = grid_page
    grid = data["map"]
    assert grid["kind"] == "grid" and (grid["width"], grid["height"]) == (5, 5)
    assert sum(q["cells"] for q in grid["squares"]) == len(data["cells"])
    assert all(0 <= q["x"] < 5 and 0 <= q["y"] < 5 for q in grid["squares"])
    assert grid["background"].startswith("data:image/png")
    assert len(data["pictures"]) == len(data["cells"])  # fewer than --max-frames: every cell


@pytest.fixture(scope="module")
def browser():
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    if not CHROMIUM.exists() or shutil.which("chromedriver") is None:
        pytest.skip("needs Chromium and chromedriver (apt-get install chromium chromium-driver)")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in BROWSER_FLAGS:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
    yield driver
    driver.quit()


def test_page_in_a_browser(grid_page, browser, tmp_path):
    page, data = grid_page
    browser.get(page.as_uri())
    rows = browser.find_elements("css selector", "#cells tbody tr")
    assert len(rows) == data["summary"]["cells"] == len(data["cells"])
    errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert errors == []
    # the goal is the environment's own, named as report.md names it
    s = data["summary"]
    facts = browser.find_element("id", "facts").text
    assert f"Goal: {'yes, at' if s['success'] else 'not reached'}" in facts
    assert f"(goal: {s['goal']}: the mission done, rewarded at the episode's end)" in facts
    # sorted by score, best first; the best cell is shown with its frame and actions
    assert rows[0].get_attribute("data-id") == str(data["animations"][0]["id"])
    assert (
        browser.find_element("css selector", "#detail img")
        .get_attribute("src")
        .startswith("data:image/png")
    )
    # clicking a row shows that cell; clicking a square lists only its cells
    rows[-1].click()
    chosen = rows[-1].get_attribute("data-id")
    assert browser.find_element("css selector", "#detail h2").text == f"cell #{chosen}"
    square = data["map"]["squares"][0]
    browser.find_elements("css selector", "#map rect")[0].click()
    assert len(browser.find_elements("css selector", "#cells tbody tr")) == square["cells"]
    # sorting by length puts the longest first
    browser.find_element("css selector", 'th[data-k="3"]').click()
    first = browser.find_element("css selector", "#cells tbody tr td:nth-child(4)").text
    assert int(first) == max(data["cells"][i][3] for i in square["ids"])
    assert len(browser.find_elements("css selector", ".player img")) == 1
    browser.save_screenshot(str(tmp_path / "view.png"))
    assert [e for e in browser.get_log("browser") if e["level"] == "SEVERE"] == []


def test_rooms_and_points_in_a_browser(rooms_page, points_page, browser):
    page, data = rooms_page
    browser.get(page.as_uri())
    assert len(browser.find_elements("css selector", "#cells tbody tr")) == len(data["cells"])
    room = data["map"]["rooms"][0]
    browser.find_element("css selector", "#map .room").click()  # lists the room's cells
    assert len(browser.find_elements("css selector", "#cells tbody tr")) == room["cells"]
    assert browser.find_element("css selector", "#detail h2").text == f"cell #{room['best']}"
    assert [e for e in browser.get_log("browser") if e["level"] == "SEVERE"] == []

    page, data = points_page
    browser.get(page.as_uri())
    assert len(browser.find_elements("css selector", "#cells tbody tr")) == len(data["cells"])
    # the pinned cell parameter and the goal are named as in report.md: CartPole has none
    facts = browser.find_element("id", "facts").text
    assert "Cells: auto: observation; decimals=2, selector: count." in facts
    assert "Goal: no goal (give one with --goal, e.g. --goal 'score>=" in facts
    assert "not reached" not in facts and f"{data['summary']['cells']:,} cells" in facts
    points = browser.find_elements("css selector", "#map circle")
    assert len(points) == len(data["cells"])
    browser.execute_script("arguments[0].dispatchEvent(new Event('click'))", points[5])
    assert browser.find_element("css selector", "#detail h2").text == "cell #5"
    assert [e for e in browser.get_log("browser") if e["level"] == "SEVERE"] == []


def test_progress_curves_are_a_standalone_svg(tmp_path):
    import xml.etree.ElementTree as ET

    from stepstone.charts import HEIGHT, WIDTH, curves

    history = [{"frames": 0, "cells": 1, "best_score": 0.0, "rooms": 1},
               {"frames": 100, "cells": 3, "best_score": 5.0, "rooms": 2}]  # fmt: skip
    root = ET.fromstring(curves(history))
    ns = "{http://www.w3.org/2000/svg}"
    lines = root.findall(f".//{ns}polyline")
    assert len(lines) == 3  # cells, best score, rooms
    # each curve runs from the bottom left (first row: the minimum) to the top right
    left, right, top, bottom = 46, 10, 22, 24
    assert lines[0].get("points") == f"{left}.0,{HEIGHT - bottom}.0 {WIDTH - right}.0,{top}.0"
    assert int(root.get("width")) == 3 * WIDTH + 2 * 12


def test_rooms_are_grouped_by_level():
    from stepstone.archive import Archive
    from stepstone.view import archive_map

    archive = Archive()
    # (cell, score, level, room, times seen): two rooms on level 0, one on level 1
    for cell, score, level, room, seen in [
        ("a", 0, 0, 1, 5), ("b", 100, 0, 1, 2), ("c", 0, 0, 0, 1), ("d", 300, 1, 1, 4),
    ]:  # fmt: skip
        archive.offer(cell, score, 1, 0, None, metrics={"level": level, "room": room})
        archive.times_seen[archive.index[cell]] = seen
    rooms = archive_map(archive, "ram", None)["rooms"]
    assert [(r["level"], r["room"], r["cells"], r["visits"]) for r in rooms] == [
        (0, 0, 1, 1), (0, 1, 2, 7), (1, 1, 1, 4),
    ]  # fmt: skip
    assert [archive.cells[r["best"]] for r in rooms] == ["c", "b", "d"]  # the best of each room


def test_serve_answers_with_the_page(grid_page):
    import threading
    import urllib.error
    import urllib.request

    from stepstone.view import server

    page, _ = grid_page
    with server(page, 0) as httpd:
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        url = f"http://127.0.0.1:{httpd.server_port}"
        try:
            with urllib.request.urlopen(f"{url}/") as reply:
                assert reply.read() == page.read_bytes()
            with pytest.raises(urllib.error.HTTPError, match="404"):
                urllib.request.urlopen(f"{url}/run.sqlite")  # the page only, not the run
        finally:
            httpd.shutdown()


def test_mujoco_is_drawn_where_a_child_process_can_draw_and_the_page_does_without_elsewhere(
    tmp_path, monkeypatch
):
    """MuJoCo's renderer can abort a process that has no OpenGL context, so ``view`` first
    draws one frame in a child process. GLFW without a display cannot draw: the page is
    written without frames. EGL draws headless where Mesa is installed (as here): the frames
    are in the page, 240 pixels a side, as JPEG. Each ``view`` runs in a process of its own,
    so that an abort fails this test only."""
    import base64
    import io
    import os
    import subprocess

    from PIL import Image
    from runs import cli

    from stepstone.envs.mujoco import can_draw

    pytest.importorskip("mujoco")
    run_dir = explore(tmp_path, "HalfCheetah-v5", "500")
    no_display = {k: v for k, v in os.environ.items() if k != "DISPLAY"}
    for gl in ("glfw", "egl"):
        done = subprocess.run(cli(f"view {run_dir} --max-frames 5"), capture_output=True,
                              text=True, env={**no_display, "MUJOCO_GL": gl})  # fmt: skip
        assert done.returncode == 0, done.stderr
        data = page_data(run_dir / "view.html")
        assert data["map"]["kind"] == "projection"
        pictures = list(data["pictures"].values())
        if gl == "glfw":
            assert pictures and set(pictures) == {None}
            continue
        monkeypatch.setenv("MUJOCO_GL", "egl")
        monkeypatch.delenv("DISPLAY", raising=False)
        if not can_draw():  # this machine has no EGL: the page as with GLFW
            assert set(pictures) == {None}
            continue
        assert pictures and all(p is not None for p in pictures)
        head, _, body = pictures[0]["img"].partition(",")
        assert head == "data:image/jpeg;base64"
        assert Image.open(io.BytesIO(base64.b64decode(body))).size == (240, 240)
        assert len(data["animations"][0]["frames"]) == len(data["animations"][0]["steps"]) > 1


def test_text_from_the_run_cannot_end_the_script():
    from stepstone.view import render

    data = {"summary": {"env": "x</script><script>alert(1)</script>"}, "cells": []}
    page = render(data, [])
    assert page.count("</script>") == 2  # the data's and the code's own
    assert "&lt;/script&gt;" in page.split("<body>")[0]  # the title, escaped


def test_the_goal_trajectory_is_played_beside_the_best_when_they_differ():
    from stepstone.archive import Archive
    from stepstone.view import animated

    archive = Archive()
    archive.offer(("start",), 0.0, 0, 0, b"s")
    assert animated(archive) == [("best trajectory", 0)]
    archive.offer(("flag",), -110.0, 110, 1, b"f", goal=True)  # MountainCar: reached at a cost
    assert animated(archive) == [("best trajectory", 0), ("goal trajectory", 1)]
    archive.offer(("above",), 5.0, 3, 2, b"a", goal=True)  # the best reaches it too: once
    assert animated(archive) == [("best trajectory", 2)]
