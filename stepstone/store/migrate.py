"""Converting a run directory of run format 1 (which pickled) to the current one, in place.

Format 1 stored cells, text actions, learned-cell sources and the snapshots of the generic and
MuJoCo adapters with ``pickle``; opening such a directory now is refused, because unpickling
runs whatever code the file holds. This conversion unpickles it once, so it runs only when the
user says they trust the directory, and rewrites every value as data (``codec.py``), in one
transaction: an interrupted conversion leaves the directory as it was.
"""

from __future__ import annotations

import pickle
import sqlite3
from pathlib import Path

import numpy as np

from .. import codec
from ..config import ExploreConfig
from ..envs import ALIASES, is_atari
from ..errors import RunDirError
from . import trust
from .lock import RunLock
from .sqlite import DB_NAME, FORMAT, VERSION, seal


def migrate(path: Path, trusted: bool) -> str:
    """Convert ``path`` to the current run format; return what was done, in words."""
    if not (path / DB_NAME).is_file():
        raise RunDirError(f"{path} is not a stepstone run directory (no {DB_NAME})")
    lock = RunLock(path).acquire()
    db = sqlite3.connect(path / DB_NAME)
    try:
        meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
        if meta.get("format") != FORMAT:
            raise RunDirError(f"{path / DB_NAME} is an SQLite file but not a stepstone run")
        version = int(meta.get("version", -1))
        if version == VERSION:
            return f"{path} is already in run format {VERSION}: nothing to do"
        if version != 1:
            raise RunDirError(
                f"{path} is in run format {version}, which this stepstone cannot read"
            )
        if not trusted:  # asked only where a conversion unpickles (the meta above is text)
            raise RunDirError(
                f"converting {path} unpickles it, which runs any code it holds; add "
                "--trust-run-dir if you trust where it came from"
            )
        config = ExploreConfig.from_json(meta["config"])
        with db:
            n = _convert(db, config)
            db.execute("UPDATE meta SET value = ? WHERE key = 'version'", (str(VERSION),))
    except (pickle.UnpicklingError, sqlite3.DatabaseError, EOFError, ValueError) as e:
        raise RunDirError(f"{path} could not be converted ({e}); it was left unchanged") from None
    finally:
        db.close()
        lock.release()
    return f"{path}: {n} values converted to run format {VERSION}"


def _convert(db: sqlite3.Connection, config: ExploreConfig) -> int:
    n = 0
    for rowid, blob in db.execute("SELECT rowid, cell FROM entries").fetchall():
        db.execute("UPDATE entries SET cell = ? WHERE rowid = ?", (_cell(blob), rowid))
        n += 1
    for node, blob in db.execute("SELECT id, actions FROM nodes WHERE dtype = 'pickle'"):
        db.execute(
            "UPDATE nodes SET dtype = 'data', actions = ? WHERE id = ?",
            (codec.pack(list(pickle.loads(blob))), node),
        )
        n += 1
    if config.cells == "learned":  # the only cells whose sources were pickles
        for i, blob in db.execute("SELECT id, data FROM sources").fetchall():
            db.execute("UPDATE sources SET data = ? WHERE id = ?", (_cell(blob), i))
            n += 1
    atari = is_atari(ALIASES.get(config.env, config.env))
    key, pickled = trust.local_key(), False
    for i, blob in db.execute("SELECT id, data FROM snapshots").fetchall():
        data, signed = (blob, False) if atari else _snapshot(blob)  # ALE states: not pickles
        pickled = pickled or signed
        db.execute("UPDATE snapshots SET data = ? WHERE id = ?", (seal(data, key, signed), i))
        n += 1
    if pickled:  # deepcopy snapshots stay pickles, signed as the migrating user's own
        db.execute("INSERT OR REPLACE INTO meta VALUES ('snapshots', 'pickle')")
    return n


def _cell(blob: bytes) -> bytes:
    return codec.pack(pickle.loads(blob))


def _snapshot(blob: bytes) -> tuple[bytes, bool]:
    """A format-1 snapshot of the generic or MuJoCo adapter in the current form, and whether
    it is (still) a pickle."""
    state = pickle.loads(blob)
    if not (isinstance(state, tuple) and len(state) == 5):
        return blob, False  # an adapter of its own (its bytes were never ours to read)
    first, second, third, fourth, fifth = state
    if isinstance(first, np.ndarray):  # MuJoCo: (state, steps, obs, info, seed)
        return codec.pack(state), False
    if first is None:  # replay: (None, None, None, seed, actions)
        return codec.pack((fourth, list(fifth))), False
    return pickle.dumps((first, second, third, fourth), protocol=pickle.HIGHEST_PROTOCOL), True
