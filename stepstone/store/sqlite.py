"""The run directory: one SQLite database holding everything a run needs to resume.

``D/run.sqlite`` (WAL journal) has the configuration, the archive rows, the snapshots (as
blobs, so a million cells do not have to fit in RAM), the trajectory tree and one metrics row
per iteration. Every iteration is written in one transaction: a run killed at any moment,
``kill -9`` included, reopens at its last commit with nothing committed lost and nothing half
written. Opening refuses a directory that is not ours, a corrupt database, or (for a new run)
a different configuration than the stored one.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import sqlite3
import zlib
from collections.abc import Callable, Iterable, Iterator, MutableMapping
from pathlib import Path
from typing import Any, overload

import numpy as np

from .. import codec
from ..archive import _INT_COLUMNS, MISSING, Archive, Retired
from ..config import ExploreConfig
from ..engine import Engine
from ..errors import CommitFailed, ConfigError, RunDirError
from ..selectors.base import Selector
from ..trajectories import Node, TrajectoryTree
from . import trust
from .lock import LOCK_NAME, RunLock

FORMAT = "stepstone-run"
# 2: cells, object actions and sources as data (codec.py); 1 pickled them (see migrate.py).
VERSION = 2
DB_NAME = "run.sqlite"
QUICK_CHECK_MAX_BYTES = 256 * 2**20

# Entries a re-keying put aside (Archive.rekey), one JSON object of plain values a row.
_RETIRED = "CREATE TABLE IF NOT EXISTS retired (id INTEGER PRIMARY KEY, data TEXT NOT NULL);"
# Adaptive cells' sample of recent states (cells/schedule.py), a row a state: each is written
# once, with the commit after it entered, and deleted when it leaves the sample.
_CELL_SAMPLE = (
    "CREATE TABLE IF NOT EXISTS cell_sample (id INTEGER PRIMARY KEY, data BLOB NOT NULL);"
)
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
{_RETIRED}
{_CELL_SAMPLE}
"""
# The entries' fixed columns; every other column is an environment metric (Archive.metrics),
# added when a run first reports it. Directories written before metrics were generic have two,
# ``level`` and ``room`` (-1 where unknown), which are read as the metrics of those names.
_FIXED = frozenset({"cell", "idx", "score", "terminal", *_INT_COLUMNS})


def _quoted(columns: Iterable[str]) -> str:
    """Column names for SQL, quoted (a metric may be named like an SQL keyword: ``order``)."""
    return ", ".join(f'"{c}"' for c in columns)


def encode_cell(cell: Any) -> bytes:
    return codec.pack(cell)


def decode_cell(blob: bytes) -> Any:
    return codec.unpack(blob)


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

    def flush(self) -> int:
        """Write pending changes inside the commit transaction; return the bytes written.

        The queue is kept until :meth:`committed`: if the transaction fails (disk full, I/O
        error) it rolls back, and the next commit writes the same rows again.
        """
        if self.deleted:
            self.db.executemany(
                f"DELETE FROM {self.table} WHERE id = ?", [(k,) for k in self.deleted]
            )
        if not self.pending:
            return 0
        rows = [(k, *self.encode(v)) for k, v in self.pending.items()]
        marks = ", ".join("?" * len(rows[0]))
        self.db.executemany(f"INSERT OR REPLACE INTO {self.table} VALUES ({marks})", rows)
        return sum(len(r[-1]) for r in rows)

    def committed(self) -> None:
        """The transaction that wrote the queue has committed: forget it."""
        self.pending.clear()
        self.deleted.clear()

    def pending_bytes(self) -> int:
        return sum(len(self.encode(v)[-1]) for v in self.pending.values())


class _Union(MutableMapping[int, Any]):
    """Read-only: the tables of a sharded run's shards as one (ids: shards.ID_BITS)."""

    def __init__(self, tables: list[_Table]):
        from ..shards import ID_BITS

        self.tables, self.bits = tables, ID_BITS

    def _table(self, key: int) -> _Table:
        i = key >> self.bits
        if not 0 <= i < len(self.tables):
            raise KeyError(key)
        return self.tables[i]

    def __getitem__(self, key: int) -> Any:
        return self._table(key)[key]

    def __contains__(self, key: object) -> bool:
        return (
            isinstance(key, int)
            and 0 <= key >> self.bits < len(self.tables)
            and (key in self._table(key))
        )

    def __setitem__(self, key: int, value: Any) -> None:
        if key in self:  # a tree adds its root node when absent: present in every shard
            return
        raise RunDirError("a sharded run directory opened to read cannot be written")

    def __delitem__(self, key: int) -> None:
        raise RunDirError("a sharded run directory opened to read cannot be written")

    def __iter__(self) -> Iterator[int]:
        for t in self.tables:
            yield from t

    def __len__(self) -> int:
        return sum(len(t) for t in self.tables)

    # A coordinator's commit flushes its tables: shards write their own.
    def flush(self) -> int:
        return 0

    def committed(self) -> None:
        pass

    def pending_bytes(self) -> int:
        return 0


def seal(snapshot: bytes, key: bytes | None = None, signed: bool = False) -> bytes:
    """A snapshot with its CRC-32 appended: damage that SQLite's own checks cannot see (bytes
    changed in place) is caught before the bytes reach an emulator. A pickled snapshot also
    carries its writer's signature (trust.py)."""
    tag = trust.sign(key, snapshot) if signed else b""
    return snapshot + zlib.crc32(snapshot).to_bytes(4, "little") + tag


def _encode_node(n: Node) -> tuple:
    actions = np.ascontiguousarray(n.actions)
    if actions.dtype == object:  # text commands, dict actions...: stored as data
        return (n.parent, n.parent_len, "data", codec.pack(list(actions)))
    return (
        n.parent,
        n.parent_len,
        json.dumps([actions.dtype.str, actions.shape[1:]]),
        actions.tobytes(),
    )


def _decode_node(row: tuple) -> Node:
    parent, parent_len, dtype, blob = row
    if dtype == "data":
        items = codec.unpack(blob)
        actions = np.empty(len(items), dtype=object)
        actions[:] = items
    else:
        dt, shape = json.loads(dtype)
        actions = np.frombuffer(blob, dtype=np.dtype(dt)).reshape(-1, *shape)
    return Node(parent, parent_len, actions)


class RunStore:
    """A run directory opened for reading and, through ``commit``, for writing."""

    def __init__(self, path: Path, db: sqlite3.Connection, lock: RunLock | None = None):
        self.path = path
        self.db = db
        self.lock = lock  # held by a store that writes (explore, resume)
        # Pickled snapshots (--return deepcopy) are signed, and restored only when the
        # signature is this account's or the user trusts the directory (trust.py).
        self.pickled = self.meta("snapshots") == "pickle"
        self.trusted = False
        self.key = trust.local_key() if self.pickled else None
        self.snapshots = _Table(db, "snapshots", self._seal, self._unseal)
        self.sources = _Table(db, "sources", lambda b: (b,), lambda r: r[0])
        self.nodes = _Table(db, "nodes", _encode_node, _decode_node)
        self.cell_sample = _Table(db, "cell_sample", lambda b: (b,), lambda r: r[0])
        self.parts: list[RunStore] = []  # a sharded run's shard stores, opened to read

    def _open_shards(self) -> None:
        """A sharded run read as one (report, replay, export, view): its tables are the union
        of its shards' (shards.py numbers every shard's snapshots and nodes apart)."""
        from ..shards import SHARDS_DIR

        k = int(json.loads(self.meta("config", "{}")).get("shards", 1))
        if k == 1 or self.parts or self.meta("shard") is not None:
            return
        parts: list[RunStore] = []
        try:
            for i in range(k):
                parts.append(RunStore.open(self.path / SHARDS_DIR / str(i)))
        except RunDirError as e:
            for p in parts:
                p.close()
            raise RunDirError(f"{self.path} is a run of {k} archive shards, one of them "
                              f"unreadable: {e}") from None  # fmt: skip
        self.parts = parts
        self.snapshots = _Union([p.snapshots for p in self.parts])  # type: ignore[assignment]
        self.sources = _Union([p.sources for p in self.parts])  # type: ignore[assignment]
        self.nodes = _Union([p.nodes for p in self.parts])  # type: ignore[assignment]

    def _seal(self, snapshot: bytes) -> tuple:
        return (seal(snapshot, self.key, self.pickled),)

    def _unseal(self, row: tuple) -> bytes:
        blob = row[0]
        tag = blob[len(blob) - trust.TAG :] if self.pickled else b""
        blob = blob[: len(blob) - len(tag)]
        data, crc = blob[:-4], blob[-4:]
        if len(blob) < 4 or zlib.crc32(data).to_bytes(4, "little") != crc:
            raise RunDirError(
                f"a snapshot in {self.path / DB_NAME} is damaged (its checksum does not match); "
                "restore the run directory from a backup"
            )
        if self.pickled and not self.trusted and not trust.verify(self.key, data, tag):
            raise RunDirError(
                f"{self.path} holds pickled snapshots (--return deepcopy) that were not written "
                "by this account, and restoring them runs any code they hold; continue only if "
                "you trust where it came from, with --trust-run-dir"
            )
        return data

    def use_pickled_snapshots(self, trusted: bool) -> None:
        """The run's environment is returned to by unpickling (``--return deepcopy``): sign
        its snapshots from now on; with ``trusted``, adopt those already there as ours."""
        if not self.pickled:  # a new run: before its first snapshot
            self.set_meta("snapshots", "pickle")
            self.pickled, self.key = True, trust.local_key()
        if not trusted:
            return
        self.trusted = True
        rows = self.db.execute("SELECT id, data FROM snapshots").fetchall()
        signed = [(seal(self._unseal((blob,)), self.key, True), i) for i, blob in rows]
        with self.db:
            self.db.executemany("UPDATE snapshots SET data = ? WHERE id = ?", signed)
        self.trusted = False  # from here on every snapshot carries this account's signature

    # -- opening -----------------------------------------------------------------------------
    @classmethod
    def create(cls, path: str | Path, config: ExploreConfig) -> RunStore:
        """Start a new run in ``path``, which must be empty or absent; the store holds its lock."""
        path = Path(path)
        if path.exists() and not path.is_dir():
            raise RunDirError(f"{path} is a file, not a run directory; choose another --run-dir")
        if path.exists() and any(p.name != LOCK_NAME for p in path.iterdir()):
            raise RunDirError(
                f"{path} is not empty; choose a new --run-dir, or continue a stored run "
                f"with 'stepstone resume {path}'"
            )
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise RunDirError(
                f"cannot create run directory {path} ({e.strerror}); choose a --run-dir whose "
                "parent is a writable directory"
            ) from None
        lock = RunLock(path).acquire()
        try:
            db = _connect(path / DB_NAME)
            with db:
                db.executescript(_SCHEMA)
                db.executemany(
                    "INSERT INTO meta VALUES (?, ?)",
                    [("format", FORMAT), ("version", str(VERSION)), ("config", config.to_json())],
                )
        except sqlite3.Error as e:
            lock.release()
            raise _write_error(path, e, 0) from None
        return cls(path, db, lock)

    @classmethod
    def open(cls, path: str | Path, write: bool = False) -> RunStore:
        """Open an existing run; anything that is not an intact stepstone run is refused.

        ``write``: take the run directory's lock (one writer at a time) and check that the
        directory can be written, before anything runs.
        """
        path = Path(path)
        db_path = path / DB_NAME
        if not path.is_dir():
            raise RunDirError(f"{path} is not a directory; give the --run-dir of a stepstone run")
        if not db_path.is_file():
            raise RunDirError(
                f"{path} is not a stepstone run directory (no {DB_NAME}); "
                "give the --run-dir used with 'stepstone explore'"
            )
        read_only = not (os.access(path, os.W_OK) and os.access(db_path, os.W_OK))
        if read_only and (write or Path(f"{db_path}-wal").exists()):
            raise RunDirError(
                f"{path} is read-only (no write permission)"
                + (" and holds an unfinished journal" if not write else "")
                + f"; copy it somewhere writable (cp -r {path} COPY) or fix its permissions"
            )
        lock = RunLock(path).acquire() if write else None
        try:
            db = _connect(db_path, read_only)
            meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
            if meta.get("format") != FORMAT:
                raise RunDirError(f"{db_path} is an SQLite file but not a stepstone run")
            version = int(meta.get("version", -1))
            if version == 1:
                raise RunDirError(
                    f"{path} was written by an older stepstone (run format 1, which pickled "
                    f"cells); convert it once with 'stepstone migrate {path} --trust-run-dir' "
                    "(converting unpickles it: only for a run directory you trust)"
                )
            if version != VERSION:
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
            if lock is not None:
                lock.release()
            raise RunDirError(
                f"{db_path} is corrupt or not a database ({e}); restore it from a backup "
                "or start a new run in another directory"
            ) from e
        except RunDirError:
            if lock is not None:
                lock.release()
            raise
        store = cls(path, db, lock)
        if not write:
            store._open_shards()
        return store

    # -- reading -----------------------------------------------------------------------------
    @overload
    def meta(self, key: str) -> str | None: ...
    @overload
    def meta(self, key: str, default: str) -> str: ...
    def meta(self, key: str, default: str | None = None) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else default

    @property
    def config(self) -> ExploreConfig:
        text = self.meta("config")
        if text is None:  # create() always writes it: only a damaged run lacks it
            raise RunDirError(f"{self.path} has no stored configuration; restore it from a backup")
        return ExploreConfig.from_json(text)

    def state(self) -> dict:
        return json.loads(self.meta("engine", "{}"))

    def _entry_columns(self) -> list[str]:
        return [r[1] for r in self.db.execute("PRAGMA table_info(entries)")]

    def load_archive(self) -> Archive:
        """The archive as of the last commit; of a sharded run, every shard's entries."""
        self._open_shards()  # (a store opened to write, as the CLI's report after a run)
        state = self.state()
        archive = Archive(self.snapshots, state.get("next_snap", 1), self.sources)
        if not self.parts:
            archive.load_columns(*self._entries())
            archive.retired = self._retired()
            return archive
        parts = [p._entries() for p in self.parts]
        cells = [c for part in parts for c in part[0]]
        columns = {n: np.concatenate([p[1][n] for p in parts]) for n in parts[0][1]}
        names = sorted({n for p in parts for n in p[2]})
        metrics = {
            n: np.concatenate([p[2].get(n, np.full(len(p[0]), MISSING)) for p in parts])
            for n in names
        }
        archive.load_columns(cells, columns, metrics)
        return archive

    def _entries(self) -> tuple[list, dict[str, np.ndarray], dict[str, np.ndarray]]:
        """This store's entries: cells, fixed columns, metric columns."""
        stored = self._entry_columns()
        names = [n for n in ("score", "terminal", *_INT_COLUMNS) if n in stored]
        metric_names = [n for n in stored if n not in _FIXED]
        names += metric_names
        query = f"SELECT cell, {_quoted(names)} FROM entries ORDER BY idx"
        try:
            rows = self.db.execute(query).fetchall()
        except sqlite3.DatabaseError as e:
            raise RunDirError(
                f"{self.path / DB_NAME} is corrupt ({e}); restore it from a backup"
            ) from e
        data = list(zip(*rows, strict=True)) or [()] * (len(names) + 1)
        try:
            cells = [decode_cell(c) for c in data[0]]
        except ValueError as e:
            raise RunDirError(
                f"{self.path / DB_NAME} holds a cell that is not stepstone data ({e}); "
                "restore it from a backup"
            ) from None
        columns = {n: np.array(v) for n, v in zip(names, data[1:], strict=True)}
        for missing in set(_INT_COLUMNS) - set(names):  # written by an older version: zeros
            columns[missing] = np.zeros(len(cells), dtype=np.int64)
        metrics = {n: np.asarray(columns.pop(n), dtype=np.int64) for n in metric_names}
        return cells, columns, metrics

    def _retired(self) -> Retired:
        """The entries a re-keying put aside (none in a run directory older than them)."""
        has = self.db.execute("SELECT 1 FROM sqlite_master WHERE name = 'retired'").fetchone()
        if not has:
            return Retired()
        try:
            rows = [json.loads(r[0]) for r in self.db.execute("SELECT data FROM retired")]
            return Retired.from_rows(rows)
        except (sqlite3.DatabaseError, ValueError, TypeError, KeyError, ConfigError) as e:
            raise RunDirError(
                f"{self.path / DB_NAME} holds entries put aside that are not stepstone data "
                f"({e}); restore it from a backup"
            ) from None

    def load_engine(self, selector: Selector, **options: Any) -> Engine:
        """The engine as of the last commit (a fresh one for a new run); ``options`` are the
        Engine constructor's, the seed being the run's."""
        state = self.state()
        tree = TrajectoryTree(self.nodes, next_id=state.get("next_node"))  # no scan of the table
        options.setdefault("seed", self.config.seed)
        try:
            return Engine.from_state(state, self.load_archive(), tree, selector, **options)
        except ValueError as e:
            raise RunDirError(
                f"{self.path / DB_NAME} holds a damaged engine state ({e}); "
                "restore it from a backup"
            ) from None

    def metrics(self) -> list[dict]:
        rows = self.db.execute("SELECT data FROM metrics ORDER BY iteration")
        return [json.loads(r[0]) for r in rows]

    def extra(self, key: str) -> Any:
        """A JSON value stored with :meth:`commit` (e.g. the dynamic cells' parameters)."""
        value = self.meta(f"extra:{key}")
        return None if value is None else json.loads(value)

    # -- writing -----------------------------------------------------------------------------
    def upgrade(self) -> None:
        """Add what newer versions keep (counters start at 0); before writing.

        Before the cell_sample table, the sample was one JSON list in the meta table,
        rewritten whole with every commit (16 MB and more for float pictures): moved here.
        """
        stored = {r[1] for r in self.db.execute("PRAGMA table_info(entries)")}
        legacy = self.extra("cell_sample")
        with self.db:
            for name in _INT_COLUMNS:
                if name not in stored:
                    self.db.execute(
                        f"ALTER TABLE entries ADD COLUMN {name} INTEGER NOT NULL DEFAULT 0"
                    )
            self.db.execute(_CELL_SAMPLE)
            if legacy is not None:
                self.db.executemany(
                    "INSERT INTO cell_sample (data) VALUES (?)",
                    [(base64.b64decode(s),) for s in legacy],
                )
                self.db.execute("DELETE FROM meta WHERE key = 'extra:cell_sample'")

    def set_meta(self, key: str, value: str) -> None:
        try:
            with self.db:
                self.db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))
        except sqlite3.Error as e:
            raise _write_error(self.path, e, 0) from None

    def commit(self, engine: Engine, metrics: dict | None = None, extra: dict | None = None):
        """Write everything changed since the last commit, in one transaction.

        All or nothing: when the transaction fails (disk full, I/O error, a lock held too
        long) the database keeps its last commit, every queued row stays queued, and
        :class:`CommitFailed` says what happened and how to continue.
        """
        try:
            self._commit(engine, metrics, extra)
        except sqlite3.Error as e:
            raise _write_error(self.path, e, self.pending_bytes()) from None
        for table in self._queued():
            table.committed()
        engine.archive.dirty.clear()
        engine.archive.rekeyed = False

    def pending_bytes(self) -> int:
        """Bytes queued for the next commit (snapshots, sources and trajectory segments)."""
        return sum(t.pending_bytes() for t in self._queued())

    def _queued(self) -> tuple[_Table, ...]:
        """The tables whose writes wait for the next commit."""
        return (self.snapshots, self.sources, self.nodes, self.cell_sample)

    def _commit(self, engine: Engine, metrics: dict | None, extra: dict | None) -> None:
        a = engine.archive
        cols = ["cell", "idx", "score", "terminal", *_INT_COLUMNS, *a.metrics]
        with self.db:
            stored = self._entry_columns()
            for name in a.metrics:  # a metric reported for the first time (names: archive.py)
                if name not in stored:
                    self.db.execute(
                        f'ALTER TABLE entries ADD COLUMN "{name}" INTEGER NOT NULL '
                        f"DEFAULT {MISSING}"
                    )
            rows_to_write: Iterable[int]
            if a.rekeyed:
                self.db.execute("DELETE FROM entries")
                rows_to_write = range(len(a))
                self.db.execute(_RETIRED)  # (a run directory older than it)
                self.db.execute("DELETE FROM retired")
                self.db.executemany(
                    "INSERT INTO retired (data) VALUES (?)",
                    [(json.dumps(a.retired.row(i)),) for i in range(len(a.retired))],
                )
            else:
                rows_to_write = sorted(a.dirty)
            rows = []
            for i in rows_to_write:
                r = a.row(i)
                rows.append((encode_cell(a.cells[i]), i, *(r[c] for c in cols[2:])))
            if rows:
                self.db.executemany(
                    f"INSERT OR REPLACE INTO entries ({_quoted(cols)}) "
                    f"VALUES ({', '.join('?' * len(cols))})",
                    rows,
                )
            for table in self._queued():
                table.flush()
            meta = [("engine", json.dumps(engine.state()))]
            meta += [(f"extra:{k}", json.dumps(v)) for k, v in (extra or {}).items()]
            self.db.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)", meta)
            if metrics is not None:
                self.db.execute(
                    "INSERT OR REPLACE INTO metrics VALUES (?, ?)",
                    (metrics["iteration"], json.dumps(metrics)),
                )

    def close(self) -> None:
        for p in self.parts:
            p.close()
        self.db.close()
        if self.lock is not None:
            self.lock.release()

    def __enter__(self) -> RunStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()  # the lock with it: the same process may open the run again


def _write_error(path: Path, error: sqlite3.Error, queued: int) -> CommitFailed:
    """A failed write as one line that says what to do; the run's last commit is intact."""
    name = getattr(error, "sqlite_errorname", "")
    free = shutil.disk_usage(path).free
    if name == "SQLITE_FULL" or "full" in str(error):
        # The WAL holds a commit before it is copied into the database: count it twice.
        need = 2 * queued + 4 * 2**20
        return CommitFailed(
            f"disk full: {path} could not take the last {queued / 2**20:.1f} MB of the run "
            f"({free / 2**20:.1f} MB free); make at least {need / 2**20:.0f} MB free there, "
            f"then continue with 'stepstone resume {path}' (nothing committed was lost)"
        )
    if name == "SQLITE_READONLY":
        return CommitFailed(
            f"{path} became read-only ({error}); make it writable, then continue with "
            f"'stepstone resume {path}' (nothing committed was lost)"
        )
    return CommitFailed(
        f"cannot write {path / DB_NAME} ({error}); fix the cause, then continue with "
        f"'stepstone resume {path}' (nothing committed was lost)"
    )


def _connect(path: Path, read_only: bool = False) -> sqlite3.Connection:
    if read_only:  # a finished run in a read-only place (a shared copy): nothing can change it
        return sqlite3.connect(f"{path.resolve().as_uri()}?immutable=1", uri=True)
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    return db
