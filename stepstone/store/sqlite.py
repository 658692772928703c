"""The run directory: one SQLite database holding everything a run needs to resume.

``D/run.sqlite`` (WAL journal) has the configuration, the archive rows, the snapshots (as
blobs, so a million cells do not have to fit in RAM), the trajectory tree and one metrics row
per iteration. Every iteration is written in one transaction: a run killed at any moment,
``kill -9`` included, reopens at its last commit with nothing committed lost and nothing half
written. Opening refuses a directory that is not ours, a corrupt database, or (for a new run)
a different configuration than the stored one.
"""

from __future__ import annotations

import json
import pickle
import sqlite3
from collections.abc import Callable, Iterator, MutableMapping
from pathlib import Path
from typing import Any

import numpy as np

from ..archive import _INT_COLUMNS, Archive
from ..config import ExploreConfig
from ..engine import Engine
from ..errors import RunDirError
from ..selectors.base import Selector
from ..trajectories import Node, TrajectoryTree

FORMAT = "stepstone-run"
VERSION = 1
DB_NAME = "run.sqlite"
QUICK_CHECK_MAX_BYTES = 256 * 2**20

_SCHEMA = f"""
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE entries (cell BLOB PRIMARY KEY, idx INTEGER NOT NULL,
    score REAL NOT NULL, terminal INTEGER NOT NULL,
    {", ".join(f"{c} INTEGER NOT NULL" for c in _INT_COLUMNS)});
CREATE TABLE snapshots (id INTEGER PRIMARY KEY, data BLOB NOT NULL);
CREATE TABLE sources (id INTEGER PRIMARY KEY, data BLOB NOT NULL);
CREATE TABLE nodes (id INTEGER PRIMARY KEY, parent INTEGER NOT NULL,
    parent_len INTEGER NOT NULL, dtype TEXT NOT NULL, actions BLOB NOT NULL);
CREATE TABLE metrics (iteration INTEGER PRIMARY KEY, data TEXT NOT NULL);
"""


def encode_cell(cell: Any) -> bytes:
    return pickle.dumps(cell, protocol=5)


def decode_cell(blob: bytes) -> Any:
    return pickle.loads(blob)


class _Table(MutableMapping[int, Any]):
    """An int-keyed SQLite table seen as a mapping; writes wait in memory for the next commit.

    Reads see pending writes first, so the engine never notices the difference from a dict.
    """

    def __init__(self, db: sqlite3.Connection, table: str, encode: Callable, decode: Callable):
        self.db, self.table = db, table
        self.encode, self.decode = encode, decode
        self.pending: dict[int, Any] = {}
        self.deleted: set[int] = set()

    def __getitem__(self, key: int) -> Any:
        if key in self.pending:
            return self.pending[key]
        if key in self.deleted:
            raise KeyError(key)
        row = self.db.execute(f"SELECT * FROM {self.table} WHERE id = ?", (key,)).fetchone()
        if row is None:
            raise KeyError(key)
        return self.decode(row[1:])

    def __setitem__(self, key: int, value: Any) -> None:
        self.pending[key] = value
        self.deleted.discard(key)

    def __delitem__(self, key: int) -> None:
        if self.pending.pop(key, None) is None and key not in self:
            raise KeyError(key)
        self.deleted.add(key)

    def __contains__(self, key: object) -> bool:
        if key in self.pending:
            return True
        if key in self.deleted:
            return False
        q = f"SELECT 1 FROM {self.table} WHERE id = ?"
        return self.db.execute(q, (key,)).fetchone() is not None

    def __iter__(self) -> Iterator[int]:
        stored = (r[0] for r in self.db.execute(f"SELECT id FROM {self.table}"))
        seen = set(self.pending)
        yield from self.pending
        yield from (k for k in stored if k not in seen and k not in self.deleted)

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def flush(self) -> None:
        """Write pending changes; called inside the commit transaction."""
        if self.deleted:
            self.db.executemany(
                f"DELETE FROM {self.table} WHERE id = ?", [(k,) for k in self.deleted]
            )
        if self.pending:
            rows = [(k, *self.encode(v)) for k, v in self.pending.items()]
            marks = ", ".join("?" * len(rows[0]))
            self.db.executemany(f"INSERT OR REPLACE INTO {self.table} VALUES ({marks})", rows)
        self.pending.clear()
        self.deleted.clear()


def _encode_node(n: Node) -> tuple:
    actions = np.ascontiguousarray(n.actions)
    if actions.dtype == object:
        return (n.parent, n.parent_len, "pickle", pickle.dumps(list(actions), protocol=5))
    return (
        n.parent,
        n.parent_len,
        json.dumps([actions.dtype.str, actions.shape[1:]]),
        actions.tobytes(),
    )


def _decode_node(row: tuple) -> Node:
    parent, parent_len, dtype, blob = row
    if dtype == "pickle":
        items = pickle.loads(blob)
        actions = np.empty(len(items), dtype=object)
        actions[:] = items
    else:
        dt, shape = json.loads(dtype)
        actions = np.frombuffer(blob, dtype=np.dtype(dt)).reshape(-1, *shape)
    return Node(parent, parent_len, actions)


class RunStore:
    """A run directory opened for reading and, through ``commit``, for writing."""

    def __init__(self, path: Path, db: sqlite3.Connection):
        self.path = path
        self.db = db
        self.snapshots = _Table(db, "snapshots", lambda b: (b,), lambda r: r[0])
        self.sources = _Table(db, "sources", lambda b: (b,), lambda r: r[0])
        self.nodes = _Table(db, "nodes", _encode_node, _decode_node)

    # -- opening -----------------------------------------------------------------------------
    @classmethod
    def create(cls, path: str | Path, config: ExploreConfig) -> RunStore:
        """Start a new run in ``path``, which must be empty or absent."""
        path = Path(path)
        if path.exists() and not path.is_dir():
            raise RunDirError(f"{path} is a file, not a run directory; choose another --run-dir")
        if path.exists() and any(path.iterdir()):
            raise RunDirError(
                f"{path} is not empty; choose a new --run-dir, or continue a stored run "
                f"with 'stepstone resume {path}'"
            )
        path.mkdir(parents=True, exist_ok=True)
        db = _connect(path / DB_NAME)
        with db:
            db.executescript(_SCHEMA)
            db.executemany(
                "INSERT INTO meta VALUES (?, ?)",
                [("format", FORMAT), ("version", str(VERSION)), ("config", config.to_json())],
            )
        return cls(path, db)

    @classmethod
    def open(cls, path: str | Path) -> RunStore:
        """Open an existing run; anything that is not an intact stepstone run is refused."""
        path = Path(path)
        db_path = path / DB_NAME
        if not path.is_dir():
            raise RunDirError(f"{path} is not a directory; give the --run-dir of a stepstone run")
        if not db_path.is_file():
            raise RunDirError(
                f"{path} is not a stepstone run directory (no {DB_NAME}); "
                "give the --run-dir used with 'stepstone explore'"
            )
        try:
            db = _connect(db_path)
            meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
            if meta.get("format") != FORMAT:
                raise RunDirError(f"{db_path} is an SQLite file but not a stepstone run")
            if int(meta.get("version", -1)) != VERSION:
                raise RunDirError(
                    f"{path} was written by run format {meta.get('version')}, this stepstone "
                    f"reads format {VERSION}; use the stepstone version that wrote it"
                )
            # A full integrity scan reads the whole file: worth it for small runs only. Larger
            # ones report damage when a read fails (load_archive turns it into RunDirError).
            if db_path.stat().st_size <= QUICK_CHECK_MAX_BYTES:
                check = db.execute("PRAGMA quick_check").fetchone()[0]
                if check != "ok":
                    raise RunDirError(f"{db_path} is corrupt ({check}); restore it from a backup")
        except sqlite3.DatabaseError as e:
            raise RunDirError(
                f"{db_path} is corrupt or not a database ({e}); restore it from a backup "
                "or start a new run in another directory"
            ) from e
        return cls(path, db)

    # -- reading -----------------------------------------------------------------------------
    def meta(self, key: str, default: str | None = None) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else default

    @property
    def config(self) -> ExploreConfig:
        return ExploreConfig.from_json(self.meta("config"))

    def state(self) -> dict:
        return json.loads(self.meta("engine", "{}"))

    def load_archive(self) -> Archive:
        state = self.state()
        archive = Archive(self.snapshots, state.get("next_snap", 1), self.sources)
        stored = {r[1] for r in self.db.execute("PRAGMA table_info(entries)")}
        names = [n for n in ("score", "terminal", *_INT_COLUMNS) if n in stored]
        query = f"SELECT cell, {', '.join(names)} FROM entries ORDER BY idx"
        try:
            rows = self.db.execute(query).fetchall()
        except sqlite3.DatabaseError as e:
            raise RunDirError(
                f"{self.path / DB_NAME} is corrupt ({e}); restore it from a backup"
            ) from e
        data = list(zip(*rows, strict=True)) or [()] * (len(names) + 1)
        cells = [decode_cell(c) for c in data[0]]
        columns = {n: np.array(v) for n, v in zip(names, data[1:], strict=True)}
        for missing in set(_INT_COLUMNS) - set(names):  # written by an older version: zeros
            columns[missing] = np.zeros(len(cells), dtype=np.int64)
        archive.load_columns(cells, columns)
        return archive

    def load_engine(self, selector: Selector) -> Engine:
        """The engine as of the last commit (a fresh one for a new run)."""
        state = self.state()
        tree = TrajectoryTree(self.nodes, next_id=state.get("next_node"))
        engine = Engine(
            self.load_archive(),
            tree,
            selector,
            seed=self.config.seed,
            frames=state.get("frames", 0),
            next_task=state.get("next_task", 1),
            rng_state=state.get("rng"),
        )
        engine.explorations = state.get("explorations", 0)
        engine.success_frame = state.get("success_frame")
        # Runs written before goals were tracked: a goal applied if one was reached.
        engine.goal_known = state.get("goal_known", engine.success_frame is not None)
        shape = state.get("cell_shape")
        engine.cell_shape = tuple(shape) if shape is not None else None
        return engine

    def metrics(self) -> list[dict]:
        rows = self.db.execute("SELECT data FROM metrics ORDER BY iteration")
        return [json.loads(r[0]) for r in rows]

    def extra(self, key: str) -> Any:
        """A JSON value stored with :meth:`commit` (e.g. the dynamic cells' parameters)."""
        value = self.meta(f"extra:{key}")
        return None if value is None else json.loads(value)

    # -- writing -----------------------------------------------------------------------------
    def upgrade(self) -> None:
        """Add columns that newer versions keep (counters start at 0); before writing."""
        stored = {r[1] for r in self.db.execute("PRAGMA table_info(entries)")}
        with self.db:
            for name in _INT_COLUMNS:
                if name not in stored:
                    self.db.execute(
                        f"ALTER TABLE entries ADD COLUMN {name} INTEGER NOT NULL DEFAULT 0"
                    )

    def set_meta(self, key: str, value: str) -> None:
        with self.db:
            self.db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    def commit(self, engine: Engine, metrics: dict | None = None, extra: dict | None = None):
        """Write everything changed since the last commit, in one transaction."""
        a = engine.archive
        state = {
            "frames": engine.frames,
            "next_task": engine.next_task,
            "rng": engine.rng.bit_generator.state,
            "next_snap": a.next_snap,
            "next_node": engine.trajectories.next_id,
            "explorations": engine.explorations,
            "success_frame": engine.success_frame,
            "goal_known": engine.goal_known,
            "cell_shape": engine.cell_shape,
        }
        cols = ["cell", "idx", "score", "terminal", *_INT_COLUMNS]
        with self.db:
            if a.rekeyed:
                self.db.execute("DELETE FROM entries")
                rows_to_write = range(len(a))
            else:
                rows_to_write = sorted(a.dirty)
            rows = []
            for i in rows_to_write:
                r = a.row(i)
                rows.append((encode_cell(a.cells[i]), i, *(r[c] for c in cols[2:])))
            if rows:
                self.db.executemany(
                    f"INSERT OR REPLACE INTO entries ({', '.join(cols)}) "
                    f"VALUES ({', '.join('?' * len(cols))})",
                    rows,
                )
            self.snapshots.flush()
            self.sources.flush()
            self.nodes.flush()
            meta = [("engine", json.dumps(state))]
            meta += [(f"extra:{k}", json.dumps(v)) for k, v in (extra or {}).items()]
            self.db.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)", meta)
            if metrics is not None:
                self.db.execute(
                    "INSERT OR REPLACE INTO metrics VALUES (?, ?)",
                    (metrics["iteration"], json.dumps(metrics)),
                )
        a.dirty.clear()
        a.rekeyed = False

    def close(self) -> None:
        self.db.close()


def _connect(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    return db
