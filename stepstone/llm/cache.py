"""The model's file in a run directory (``llm_cache.sqlite``), shared by all its processes.

What the processes of a run ask the model must add up: a reply cached by one is free for all
(and for a resumed run or a re-run with the same prompts), a prompt asked by one is waited for
by the others, and the budget and counts are the run's, not a process's."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

HIDDEN = ("reserved", "halted")  # ledger rows that are switches, not counts


class Cache:
    """prompt hash -> reply text, the requests in flight, and a ledger of counters, in an
    SQLite file (WAL).

    The ledger holds what must add up across worker processes and resumed runs: calls made,
    tokens, cached answers, the calls reserved against the budget, the roles' fallbacks, and
    the halt switch.
    """

    def __init__(self, path: Path):
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=60)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")  # no fsync per counter update (WAL-safe)
        self.db.execute("CREATE TABLE IF NOT EXISTS replies (key TEXT PRIMARY KEY, reply TEXT)")
        self.db.execute(
            "CREATE TABLE IF NOT EXISTS ledger (name TEXT PRIMARY KEY, value INTEGER NOT NULL)"
        )
        self.db.execute(
            "CREATE TABLE IF NOT EXISTS inflight (key TEXT PRIMARY KEY, since REAL NOT NULL)"
        )
        self.db.execute(
            "CREATE TABLE IF NOT EXISTS judgements "
            "(role TEXT, cell TEXT, value REAL NOT NULL, PRIMARY KEY (role, cell))"
        )
        self._lock = threading.Lock()

    def __getstate__(self):  # a worker process opens the file itself
        return {"path": self.path}

    def __setstate__(self, state):
        self.__init__(state["path"])

    def get(self, key: str) -> str | None:
        with self._lock:
            row = self.db.execute("SELECT reply FROM replies WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def put(self, key: str, reply: str) -> None:
        with self._lock:
            self.db.execute("INSERT OR REPLACE INTO replies VALUES (?, ?)", (key, reply))

    def claim(self, key: str, stale: float) -> bool:
        """Mark ``key`` as asked by the caller; False while another process asks it (for
        less than ``stale`` seconds: a claim older than that is of a process that died)."""
        now = time.time()
        with self._lock:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                row = self.db.execute("SELECT since FROM inflight WHERE key = ?", (key,))
                since = row.fetchone()
                if since is not None and now - since[0] < stale:
                    return False
                self.db.execute("INSERT OR REPLACE INTO inflight VALUES (?, ?)", (key, now))
                return True
            finally:
                self.db.execute("COMMIT")

    def release(self, key: str) -> None:
        with self._lock:
            self.db.execute("DELETE FROM inflight WHERE key = ?", (key,))

    def remember(self, role: str, values: dict[str, float]) -> None:
        """Keep a role's judgement of cells (IGE verdicts, LFG scores) for resumed runs;
        cells are keyed by their ``repr``, which is compared, never evaluated."""
        with self._lock:
            self.db.executemany(
                "INSERT OR REPLACE INTO judgements VALUES (?, ?, ?)",
                [(role, k, float(v)) for k, v in values.items()],
            )

    def recall(self, role: str) -> dict[str, float]:
        with self._lock:
            rows = self.db.execute("SELECT cell, value FROM judgements WHERE role = ?", (role,))
            return dict(rows.fetchall())

    def add(self, counts: dict[str, int]) -> None:
        """Add to ledger counters (created at 0)."""
        with self._lock:
            self.db.executemany(
                "INSERT INTO ledger VALUES (?, ?) "
                "ON CONFLICT(name) DO UPDATE SET value = value + excluded.value",
                [(k, int(v)) for k, v in counts.items() if v],
            )

    def totals(self) -> dict[str, int]:
        """The counters (the switches left out)."""
        with self._lock:
            rows = self.db.execute("SELECT name, value FROM ledger").fetchall()
        return {k: v for k, v in rows if k not in HIDDEN}

    def set_halted(self, halted: bool) -> None:
        """Halt the run's model calls, or let a (re)started run call again: then nothing of
        an earlier session, killed perhaps mid-request, is in flight any more."""
        with self._lock:
            self.db.execute("INSERT OR REPLACE INTO ledger VALUES ('halted', ?)", (int(halted),))
            if not halted:
                self.db.execute("DELETE FROM inflight")

    def halted(self) -> bool:
        with self._lock:
            row = self.db.execute("SELECT value FROM ledger WHERE name = 'halted'").fetchone()
        return bool(row and row[0])

    def reserve(self, limit: int) -> bool:
        """Count one more call against ``limit``; False when ``limit`` calls were counted."""
        with self._lock:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                row = self.db.execute("SELECT value FROM ledger WHERE name = 'reserved'")
                used = (row.fetchone() or (0,))[0]
                if used >= limit:
                    return False
                self.db.execute("INSERT OR REPLACE INTO ledger VALUES ('reserved', ?)", (used + 1,))
                return True
            finally:
                self.db.execute("COMMIT")
