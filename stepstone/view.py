"""One self-contained HTML page of a run, to look at what the exploration found.

The page holds the progress curves, a map of the archive, the best trajectory as an animation,
and a sortable table of the cells where clicking one shows its frame and its actions. Everything
(pictures, data, script) is inside the one file: it opens from disk, from a mail attachment or a
CI artifact, with no server and no network. ``serve`` shows it on a local port for machines
reached over ssh.

The map depends on what the cells are: Atari games with a RAM layout put each cell in a room
of a level; grid worlds (MiniGrid cells) colour the grid by cells and visits; other cells are
points of a 2-D projection (principal components) of their numeric descriptors, or of one
number against the score. Frames are obtained by replaying each shown cell's trajectory from
the seed, never from stored snapshots, so nothing from the run directory is unpickled.

Not for numbers: ``report`` (summary.json) is what scripts read.
"""

from __future__ import annotations

import base64
import contextlib
import html
import io
import json
import math
import zlib
from collections.abc import Hashable
from dataclasses import replace
from enum import Enum
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, cast

import numpy as np

from . import report
from .archive import MISSING, Archive, better
from .cells.base import is_image, to_gray
from .charts import curves
from .errors import ConfigError
from .store.sqlite import RunStore
from .trajectories import TrajectoryTree

PAGE = "view.html"
TEMPLATE = "view_page.html"  # beside this module: the page's layout, style and script
ANIMATION_FRAMES = 240  # frames of the best trajectory's animation (every k-th step beyond)
PICTURE_SIDE = 320  # pixels; larger pictures are shrunk (Atari's 210 x 160 is not)
MUJOCO_SIDE = 240  # pixels of a MuJoCo render asked for


# -- what a cell looks like ------------------------------------------------------------------
def descriptor(cell: Hashable) -> np.ndarray | None:
    """The numbers a cell key holds (for the projection map), or None for text and the like."""
    if isinstance(cell, bytes):  # downscaled frames
        return np.frombuffer(cell, dtype=np.uint8).astype(np.float64)
    if (  # an observation frozen by cells/observation.py: (dtype, shape, bytes)
        isinstance(cell, tuple)
        and len(cell) == 3
        and isinstance(cell[0], str)
        and isinstance(cell[2], bytes)
    ):
        try:
            return np.frombuffer(cell[2], dtype=np.dtype(cell[0])).astype(np.float64).ravel()
        except (TypeError, ValueError):
            return None
    if isinstance(cell, bool | int | float | np.number):
        return np.array([float(cell)])
    if isinstance(cell, tuple):
        parts = [descriptor(c) if c is not None else np.array([-1.0]) for c in cell]
        arrays = [p for p in parts if p is not None]
        if len(arrays) < len(parts):
            return None
        return np.concatenate(arrays) if arrays else None
    return None


def label(cell: Hashable) -> str:
    """A short readable name for a cell key."""
    if isinstance(cell, bytes):
        return f"{len(cell)} bytes #{zlib.crc32(cell) & 0xFFFFFF:06x}"  # stable across runs
    d = descriptor(cell) if isinstance(cell, tuple) and len(cell) == 3 else None
    if d is not None and isinstance(cell, tuple) and isinstance(cell[2], bytes):
        text = "[" + ", ".join(f"{v:g}" for v in d[:8]) + (", ..." if d.size > 8 else "") + "]"
    else:
        text = str(cell)
    return text if len(text) <= 80 else text[:77] + "..."


def projection(points: np.ndarray) -> np.ndarray:
    """Rows projected on their two principal components (one varying column: itself and 0).
    Centred on the first row before the mean: a bin index near 2**53 (PointMaze's goal at 56
    bits) is the same in every row, but its rounded mean was not, and put every point at one x."""
    shifted = points - points[0]
    centred = shifted - shifted.mean(axis=0)
    if points.shape[1] == 1:
        return np.column_stack([centred[:, 0], np.zeros(len(points))])
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    out = centred @ vt[:2].T
    return out if out.shape[1] == 2 else np.column_stack([out[:, 0], np.zeros(len(out))])


# -- pictures --------------------------------------------------------------------------------
def image_uri(image: np.ndarray) -> str:
    """An RGB array as a data: URI: a palette PNG when it has few colours (Atari, grids:
    exact), else a JPEG (a 3-D render: a third of a PNG's bytes), no side over
    ``PICTURE_SIDE``."""
    from PIL import Image

    img = Image.fromarray(np.asarray(image, dtype=np.uint8))
    few = img.getcolors(256) is not None
    # shrunk pixel for pixel where the colours are few, so that they stay few
    img.thumbnail(
        (PICTURE_SIDE, PICTURE_SIDE), Image.Resampling.NEAREST if few else Image.Resampling.BICUBIC
    )
    buf = io.BytesIO()
    if few:
        img.quantize(colors=256).save(buf, format="PNG", optimize=True)
        kind = "png"
    else:
        img.convert("RGB").save(buf, format="JPEG", quality=85)
        kind = "jpeg"
    return f"data:image/{kind};base64," + base64.b64encode(buf.getvalue()).decode()


def frame_of(obs: Any) -> np.ndarray | None:
    """The observation's picture as RGB (a dict's or tuple's first picture part), or None.
    Small arrays are symbols, not pictures (MiniGrid's 7 x 7 view)."""
    if isinstance(obs, dict):
        obs = tuple(obs[k] for k in sorted(obs))
    if isinstance(obs, tuple):
        return next((f for f in map(frame_of, obs) if f is not None), None)
    if not is_image(obs):
        return None
    last = obs.ndim == 2 or obs.shape[-1] in (1, 3, 4)  # rows x columns first, else planes
    if min(obs.shape[:2] if last else obs.shape[1:]) <= 16:
        return None
    if obs.ndim == 3 and obs.shape[-1] in (3, 4):
        return obs[..., :3]
    return np.repeat(to_gray(obs)[..., None], 3, axis=-1)  # gray, or stacked planes' mean


def picture(env: Any) -> dict | None:
    """What the environment looks like now: {"img": uri} or {"text": ...}, or None."""
    obs = env.observe()
    if (frame := frame_of(obs)) is not None:
        return {"img": image_uri(frame)}
    inner = getattr(getattr(env, "env", None), "unwrapped", None)
    # MiniGrid draws its full grid without a render mode
    if inner is not None and hasattr(inner, "get_frame"):
        tile = max(8, min(32, 480 // max(inner.width, inner.height)))
        return {"img": image_uri(inner.get_frame(highlight=False, tile_size=tile))}
    if isinstance(obs, str):
        return {"text": obs[:4000]}
    if getattr(getattr(env, "env", None), "render_mode", None) == "rgb_array":
        try:
            frame = env.env.render()
        except Exception:  # no display library or GL context: no picture, not a failed page
            return None
        return {"img": image_uri(frame)} if frame is not None else None
    return None


def pictures_at(worker: Any, seed: int, actions: np.ndarray, steps: set[int]) -> dict:
    """Replay ``actions`` from the seed; the picture after each of ``steps`` actions."""
    env = worker.env
    env.reset(seed)
    out = {0: picture(env)} if 0 in steps else {}
    for done, a in enumerate(actions[: max(steps)], start=1):
        env.step(a)
        if done in steps:
            out[done] = picture(env)
    return out


def action_names(env: Any) -> list[str] | None:
    """Names of a discrete action space's actions where the environment gives them."""
    n = getattr(env.action_space, "n", None)
    if n is None:
        return None
    ale_actions = getattr(env, "actions", None)  # ALE: the legal action set, as enum values
    if isinstance(ale_actions, list) and len(ale_actions) == n:
        return [getattr(a, "name", str(a)) for a in ale_actions]
    enum = getattr(getattr(getattr(env, "env", None), "unwrapped", None), "actions", None)
    if isinstance(enum, type) and issubclass(enum, Enum):  # MiniGrid: an IntEnum of the actions
        return [enum(i).name if i in enum._value2member_map_ else str(i) for i in range(n)]
    return None


def run_length(actions: np.ndarray, names: list[str] | None, limit: int = 600) -> str:
    """Actions as 'RIGHT x12, JUMP, ...' (the first ``limit`` runs)."""
    runs: list[str] = []
    i = 0
    while i < len(actions) and len(runs) < limit:
        j = i
        while j + 1 < len(actions) and np.array_equal(actions[j + 1], actions[i]):
            j += 1
        a = actions[i]
        name = names[int(a)] if names is not None else np.array2string(np.asarray(a), precision=2)
        runs.append(name if j == i else f"{name} x{j - i + 1}")
        i = j + 1
    more = " ..." if i < len(actions) else ""
    return ", ".join(runs) + more if runs else "(none: the reset state)"


# -- the archive map -------------------------------------------------------------------------
def place(archive: Archive, i: int) -> tuple[int, int]:
    """Entry ``i``'s (level, room) metrics, -1 for those its environment does not report."""
    level, room = archive.metric("level"), archive.metric("room")
    return (
        int(level[i]) if level is not None else MISSING,
        int(room[i]) if room is not None else MISSING,
    )


def archive_map(archive: Archive, cells_kind: str, env: Any | None) -> dict:
    """Rooms by level where cells know their room; the grid for MiniGrid cells; else the
    cells' descriptors projected to 2-D (or none, for text and other non-numeric cells)."""
    n = len(archive)
    if n and archive.distinct(("room",)) is not None:
        rooms: dict[tuple[int, int], dict] = {}
        for i in range(n):
            key = place(archive, i)
            r = rooms.setdefault(key, {"level": key[0], "room": key[1], "cells": 0,
                                       "visits": 0, "best": i})  # fmt: skip
            r["cells"] += 1
            r["visits"] += int(archive.times_seen[i])
            b = r["best"]
            if better(archive.score[i], archive.length[i], archive.score[b], archive.length[b]):
                r["best"] = i
        return {"kind": "rooms", "rooms": [rooms[k] for k in sorted(rooms)]}
    inner = getattr(getattr(env, "env", None), "unwrapped", None)
    if cells_kind == "minigrid" and inner is not None:
        squares: dict[tuple[int, int], list[int]] = {}
        for i, cell in enumerate(archive.cells):
            x, y = cast(tuple, cell)[:2]  # a MiniGrid cell starts with its square
            squares.setdefault((int(x), int(y)), []).append(i)
        return {
            "kind": "grid",
            "width": int(inner.width),
            "height": int(inner.height),
            "squares": [
                {
                    "x": x,
                    "y": y,
                    "cells": len(ids),
                    "visits": int(sum(int(archive.times_seen[i]) for i in ids)),
                    "ids": ids,
                }
                for (x, y), ids in squares.items()
            ],
        }
    descriptors = [descriptor(c) for c in archive.cells]
    sizes = {d.size for d in descriptors if d is not None}
    if n < 2 or any(d is None for d in descriptors) or len(sizes) != 1:
        return {"kind": "none", "why": "these cells have no numeric descriptors to project"}
    if sizes == {1}:  # one number a cell (a Discrete state): its value across, score up
        xy = np.column_stack([np.concatenate(descriptors), archive.score[:n]])  # type: ignore[arg-type]
        note = "each cell's value (across) and score (up)"
    else:
        xy = projection(np.stack(descriptors))  # type: ignore[arg-type]
        note = "each cell's descriptor projected on its two principal components"
    return {
        "kind": "projection",
        "note": note,
        "points": [[i, round(float(x), 4), round(float(y), 4)] for i, (x, y) in enumerate(xy)],
    }


# -- the page --------------------------------------------------------------------------------
def shown_cells(archive: Archive, limit: int) -> list[int]:
    """The cells whose frames go in the page: the best first, each room's best, then by score."""
    n = len(archive)
    order = [int(i) for i in np.lexsort((archive.length[:n], -archive.score[:n]))]
    rooms: dict[tuple[int, int], int] = {}
    for i in order:
        rooms.setdefault(place(archive, i), i)
    chosen = dict.fromkeys([order[0], *rooms.values(), *order] if n else [])
    return list(chosen)[:limit]


def cell_pictures(worker: Any, seed: int, tree: TrajectoryTree, archive: Archive,
                  ids: list[int]) -> tuple[dict, dict]:  # fmt: skip
    """Each cell's picture and actions. Entries found by one exploration share a trajectory
    node, so one replay of the node's longest needed prefix serves them all."""
    names = action_names(worker.env)
    pictures: dict[int, dict | None] = {}
    actions: dict[int, str] = {}
    by_node: dict[int, list[int]] = {}
    for i in ids:
        by_node.setdefault(int(archive.node[i]), []).append(i)
    for node, members in by_node.items():
        lengths = {int(archive.length[i]) for i in members}
        path = tree.actions(node, max(lengths))
        seen = pictures_at(worker, seed, path, lengths)
        for i in members:
            pictures[i] = seen[int(archive.length[i])]
            actions[i] = run_length(path[: archive.length[i]], names)
    return pictures, actions


def animated(archive: Archive) -> list[tuple[str, int]]:
    """The entries whose whole trajectory the page plays: the best one and, where it is
    another (MountainCar: every step costs, so the flag is not the best score), the best that
    reaches the goal."""
    if not len(archive):
        return []
    shown = [("best trajectory", archive.best())]
    goal = archive.goal_entry()
    if goal is not None and goal != shown[0][1]:
        shown.append(("goal trajectory", goal))
    return shown


def animation(worker: Any, seed: int, actions: np.ndarray) -> dict:
    """At most ANIMATION_FRAMES pictures along a trajectory, and the step each shows."""
    stride = max(1, math.ceil((len(actions) + 1) / ANIMATION_FRAMES))
    shots = pictures_at(worker, seed, actions, {*range(0, len(actions) + 1, stride), len(actions)})
    steps = [k for k in sorted(shots) if shots[k] is not None]
    return {"steps": steps, "frames": [shots[k] for k in steps]}


def drawing_worker(config: Any) -> Any:
    """A worker whose environment draws frames (``render_mode="rgb_array"``) where a Gymnasium
    environment accepts it; else the run's own. MuJoCo only where a child process could draw
    (``can_draw``): without an OpenGL context its renderer can abort the process."""
    from .envs.generic import GymEnv
    from .envs.mujoco import can_draw, is_mujoco
    from .errors import StepstoneError
    from .worker import Worker

    worker = Worker.from_config(config)
    env = worker.env
    if not isinstance(env, GymEnv) or "render_mode" in config.env_args:
        return worker
    tries: list[dict[str, Any]] = [{"render_mode": "rgb_array"}]
    if is_mujoco(env.env):
        if not can_draw():
            return worker
        # drawn in software here: 110 ms a frame at this size, 170 at the default 480
        tries.insert(0, {**tries[0], "width": MUJOCO_SIDE, "height": MUJOCO_SIDE})
    worker.close()
    for extra in tries:
        try:
            return Worker.from_config(replace(config, env_args={**config.env_args, **extra}))
        except StepstoneError:  # text games, or an environment without that argument
            pass
    return Worker.from_config(config)


def page_data(store: RunStore, max_frames: int) -> dict:
    """Everything the page shows, as JSON-ready data (pictures as data: URIs)."""
    config = store.config
    archive = store.load_archive()
    tree = TrajectoryTree(store.nodes)
    table = [
        [i, label(archive.cells[i]), float(archive.score[i]), int(archive.length[i]),
         int(archive.times_chosen[i]), int(archive.times_seen[i]), int(archive.found_frame[i]),
         *place(archive, i)]
        for i in range(len(archive))
    ]  # fmt: skip
    summary = report.summary(store)
    # the page names the cells, the best trajectory and the goal as report.md does
    data: dict[str, Any] = {
        "summary": summary,
        "cells_row": report.cells_row(summary),
        "best_row": report.best_trajectory(summary),
        "success_row": report.success_row(summary),
        "cells": table,
    }
    worker = drawing_worker(config)
    try:
        data["map"] = archive_map(archive, worker.cells_kind, worker.env)
        if data["map"]["kind"] == "grid":
            worker.env.reset(config.seed)
            data["map"]["background"] = (picture(worker.env) or {}).get("img")
        ids = shown_cells(archive, max_frames)
        data["pictures"], data["actions"] = cell_pictures(worker, config.seed, tree, archive, ids)
        data["animations"] = [
            {"title": title, "id": i, **animation(worker, config.seed, tree.actions(
                int(archive.node[i]), int(archive.length[i])))}
            for title, i in animated(archive)
        ]  # fmt: skip
    finally:
        worker.close()
    return data


def render(data: dict, history: list[dict]) -> str:
    """The HTML page for ``page_data``'s data."""
    s = data["summary"]
    # "<" only occurs inside JSON strings, where \u003c means the same and cannot end the script
    payload = json.dumps(data, separators=(",", ":")).replace("<", "\\u003c")
    title = html.escape(f"stepstone: {s['env']}")
    template = (Path(__file__).parent / TEMPLATE).read_text()
    return (
        template.replace("{{title}}", title)
        .replace("{{curves}}", curves(history) if history else "<p>nothing committed yet</p>")
        .replace("{{data}}", payload)
    )


def write(store: RunStore, out: Path | None = None, max_frames: int = 500) -> Path:
    """Write the page (default: view.html in the run directory); return its path."""
    out = out or store.path / PAGE
    out.write_text(render(page_data(store, max_frames), store.metrics()))
    return out


def server(path: Path, port: int) -> ThreadingHTTPServer:
    """An HTTP server on 127.0.0.1:``port`` (0: any free port) answering with the page."""
    body = path.read_bytes()
    names = ("/", f"/{path.name}")

    class Page(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            found = self.path in names
            self.send_response(200 if found else 404)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.end_headers()
            if found:
                self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    try:
        return ThreadingHTTPServer(("127.0.0.1", port), Page)
    except OSError as e:  # the port taken, or not ours to bind
        raise ConfigError(
            f"cannot serve on 127.0.0.1:{port} ({e.strerror or e}); give another --port, or "
            "--port 0 for any free one"
        ) from None


def serve(path: Path, port: int) -> None:
    """Serve the page until Ctrl-C (for a run on another machine: ssh -L PORT:localhost:PORT)."""
    with server(path, port) as httpd:
        print(f"serving {path} on http://127.0.0.1:{httpd.server_port}/ (Ctrl-C stops)", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            httpd.serve_forever()
