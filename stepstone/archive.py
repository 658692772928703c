"""The archive: one entry per cell, the merge rule, and the selection counters.

Pure: no files, processes or sockets. Entries are kept column-wise in numpy arrays so that
selectors compute weights for a million cells in one vectorised pass, and so that an entry
costs ~100 bytes of RAM plus its key. Snapshots, which are kilobytes each, are *not* kept here:
they live in a ``MutableMapping[int, bytes]`` that is a dict by default and the run directory's
SQLite table when a run is persisted. So do the optional *sources* (what a cell was computed
from, kept only by cell functions that can change, to re-key the archive).

What an environment reports of a state beyond its cell (Montezuma's level and room, a count of
doors opened) is kept as *metrics*: one integer column per name, created the first time an
entry carries that name. The archive knows no names; it keeps the columns and answers generic
questions about them (``distinct``, ``highest``), which the report turns into its fields.
"""

from __future__ import annotations

import re
from collections.abc import Hashable, Iterator, Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from enum import IntEnum

import numpy as np

from .errors import ConfigError

_INT_COLUMNS = (
    "length",  # actions from reset to this cell
    "node",  # trajectory node (see trajectories.py)
    "snap",  # key of the snapshot in Archive.snapshots
    "found_frame",  # engine frame counter when this entry was (last) improved
    "times_chosen",
    "times_chosen_since_new",
    "times_seen",
    "discoveries",  # explorations from this cell that added or improved an entry
    "new_finds",  # explorations from this cell that added a cell (discoveries less improvements)
    "goal",  # 1 when this entry's state reaches the run's goal (goals.py), else 0
)
_COUNTERS = (
    "times_chosen", "times_chosen_since_new", "times_seen", "discoveries", "new_finds"
)  # fmt: skip

_COLUMNS = ("score", "terminal", *_INT_COLUMNS)
_DTYPES = {"score": np.float64, "terminal": bool, **{n: np.int64 for n in _INT_COLUMNS}}

MISSING = -1  # a metric's value in an entry whose state did not report it (metrics are >= 0)
# Metric names become column names in the run directory: identifiers, none of the fixed ones.
_METRIC_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
RESERVED = frozenset({"cell", "idx", *_COLUMNS})


def check_metric_name(name: str) -> str:
    """``name`` if it can name a metric column, else ConfigError saying why."""
    if not _METRIC_NAME.match(name) or name in RESERVED:
        raise ConfigError(
            f"metric name {name!r} must be a lower-case identifier and none of "
            f"{', '.join(sorted(RESERVED))}; rename it in the adapter's metrics()"
        )
    return name


class AddStatus(IntEnum):
    """What :meth:`Archive.offer` did, so callers need not work it out again.

    Ordered and falsy when nothing changed, as pyribs's ``AddStatus``
    (ribs/archives/_add_status.py): ``NEW > IMPROVED > NOT_ADDED``.
    """

    NOT_ADDED = 0
    IMPROVED = 1  # the cell was there; this entry replaced its old one
    NEW = 2  # the cell was not in the archive


@dataclass(frozen=True, slots=True)
class Entry:
    """A read-only view of one archive row."""

    cell: Hashable
    score: float
    length: int
    node: int
    snap: int
    found_frame: int
    times_chosen: int
    times_chosen_since_new: int
    times_seen: int
    discoveries: int
    new_finds: int
    goal: int
    terminal: bool
    metrics: Mapping[str, int]  # the metrics this entry's state reported (see Archive.metrics)


def better(
    score: float,
    length: int,
    old_score: float,
    old_length: int,
    goal: bool = False,
    old_goal: bool = False,
) -> bool:
    """Go-Explore's merge rule: a higher score, or an equal score reached in fewer actions.

    Ecoffet et al. 2019, "Go-Explore", section 2.1 ("update the archive"). One addition: a
    state that reaches the run's goal is never replaced by one that does not, whatever their
    scores (on MountainCar every step costs 1, so the flag is reached with less return than
    the cell's states short of it), as Go-Explore's domain-knowledge cells keep the level.
    """
    if goal != old_goal:
        return bool(goal)
    return score > old_score or (score == old_score and length < old_length)


class Retired:
    """Entries a re-keying put aside, column by column as in the archive (no cells: they get
    one at the next re-key). See :meth:`Archive.rekey`."""

    def __init__(
        self,
        columns: Mapping[str, np.ndarray] | None = None,
        metrics: Mapping[str, np.ndarray] | None = None,
    ):
        self.columns = {
            name: np.asarray(columns[name] if columns else [], dtype=_DTYPES[name])
            for name in _COLUMNS
        }
        self.metrics = {check_metric_name(n): np.asarray(c, dtype=np.int64)
                        for n, c in (metrics or {}).items()}  # fmt: skip

    def __len__(self) -> int:
        return len(self.columns["snap"])

    def row(self, i: int) -> dict:
        """One entry aside as plain values (metrics MISSING left out), for the run directory."""
        row = {name: col[i].item() for name, col in self.columns.items()}
        row.update((n, int(c[i])) for n, c in self.metrics.items() if c[i] != MISSING)
        return row

    @classmethod
    def from_rows(cls, rows: Sequence[Mapping]) -> Retired:
        names = {n for r in rows for n in r} - set(_COLUMNS)
        # A counter newer than the row (written by an older version) starts at 0.
        columns = {
            n: np.array([r.get(n, 0) if n in _COUNTERS else r[n] for r in rows], dtype=_DTYPES[n])
            for n in _COLUMNS
        }
        metrics = {n: np.array([r.get(n, MISSING) for r in rows]) for n in names}
        return cls(columns, metrics)


class Archive:
    """cell -> best entry, with counters; snapshots in a pluggable mapping."""

    # One numpy column per field, row i describing cells[i] (see _INT_COLUMNS for the ints).
    score: np.ndarray
    terminal: np.ndarray
    length: np.ndarray
    node: np.ndarray
    snap: np.ndarray
    found_frame: np.ndarray
    times_chosen: np.ndarray
    times_chosen_since_new: np.ndarray
    times_seen: np.ndarray
    discoveries: np.ndarray
    new_finds: np.ndarray
    goal: np.ndarray
    # name -> int64 column of what the environment reported (MISSING where a state did not)
    metrics: dict[str, np.ndarray]

    def __init__(
        self,
        snapshots: MutableMapping[int, bytes] | None = None,
        next_snap: int = 1,
        sources: MutableMapping[int, bytes] | None = None,
    ):
        self.snapshots: MutableMapping[int, bytes] = snapshots if snapshots is not None else {}
        self.sources: MutableMapping[int, bytes] = sources if sources is not None else {}
        self.next_snap = next_snap
        self.cells: list[Hashable] = []
        self.index: dict[Hashable, int] = {}
        # Rows changed since the store last wrote them; a re-keying rewrites everything.
        self.dirty: set[int] = set()
        self.rekeyed = False
        self.retired = Retired()  # entries a re-key put aside (rekey)
        cap = 1024
        self.score = np.zeros(cap, dtype=np.float64)
        self.terminal = np.zeros(cap, dtype=bool)
        for name in _INT_COLUMNS:
            setattr(self, name, np.zeros(cap, dtype=np.int64))
        self.metrics = {}

    # -- reading -----------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.cells)

    def __contains__(self, cell: Hashable) -> bool:
        return cell in self.index

    def __iter__(self) -> Iterator[Entry]:
        return (self.entry(i) for i in range(len(self.cells)))

    def entry(self, i: int) -> Entry:
        return Entry(
            cell=self.cells[i],
            score=float(self.score[i]),
            terminal=bool(self.terminal[i]),
            **{name: int(getattr(self, name)[i]) for name in _INT_COLUMNS},
            metrics=self.metrics_of(i),
        )

    def snapshot(self, i: int) -> bytes | None:
        """The snapshot kept for row ``i``; None where there is none (a run that returns by
        replaying its actions keeps none)."""
        snap = int(self.snap[i])
        return self.snapshots.get(snap) if snap else None

    def metrics_of(self, i: int) -> dict[str, int]:
        """The metrics entry ``i``'s state reported."""
        return {k: int(col[i]) for k, col in self.metrics.items() if col[i] != MISSING}

    def get(self, cell: Hashable) -> Entry | None:
        i = self.index.get(cell)
        return None if i is None else self.entry(i)

    def best(self) -> int:
        """Index of the best entry: highest score, then shortest trajectory."""
        n = len(self.cells)
        order = np.lexsort((self.length[:n], -self.score[:n]))
        return int(order[0])

    def metric(self, name: str) -> np.ndarray | None:
        """The column of metric ``name`` (one value per entry, MISSING where unreported), or
        None when no entry reported it."""
        col = self.metrics.get(name)
        return None if col is None else col[: len(self.cells)]

    def distinct(self, names: Sequence[str]) -> int | None:
        """How many distinct combinations of the metrics ``names`` the entries reached (e.g.
        (level, room): the rooms of every level), counting the entries that report any of
        them; None when none does."""
        cols = [c for c in map(self.metric, names) if c is not None]
        if not cols:
            return None
        rows = np.stack(cols, axis=1)
        rows = rows[(rows != MISSING).any(axis=1)]
        return int(len(np.unique(rows, axis=0))) if len(rows) else None

    def highest(self, name: str) -> int | None:
        """The largest value of metric ``name`` among the entries, or None if none reports it."""
        col = self.metric(name)
        if col is None or not (col != MISSING).any():
            return None
        return int(col[col != MISSING].max())

    # -- writing -----------------------------------------------------------------------------
    def accepts(self, cell: Hashable, score: float, length: int, goal: bool = False) -> bool:
        """Would an entry with this score and length enter or improve the archive?"""
        i = self.index.get(cell)
        return i is None or better(
            score, length, self.score[i], self.length[i], goal, bool(self.goal[i])
        )

    def goal_entry(self) -> int | None:
        """Index of the best entry that reaches the goal (highest score, then shortest), if
        any: the one a user asked for, which on MountainCar is not the best score's."""
        n = len(self.cells)
        reach = np.flatnonzero(self.goal[:n] > 0)
        if len(reach) == 0:
            return None
        order = np.lexsort((self.length[reach], -self.score[reach]))
        return int(reach[order[0]])

    def offer(
        self,
        cell: Hashable,
        score: float,
        length: int,
        node: int,
        snapshot: bytes | None,
        frame: int = 0,
        terminal: bool = False,
        source: bytes | None = None,
        goal: bool = False,
        metrics: Mapping[str, int] | None = None,
    ) -> AddStatus:
        """Apply the merge rule; say whether the cell is new, improved or left as it was.

        ``metrics``: what the environment reported of this state (``Explorable.metrics()``),
        non-negative integers by name; a name not seen before adds a column.
        """
        i = self.index.get(cell)
        if i is not None and not better(
            score, length, self.score[i], self.length[i], goal, bool(self.goal[i])
        ):
            return AddStatus.NOT_ADDED
        status = AddStatus.IMPROVED if i is not None else AddStatus.NEW
        if i is None:
            i = self._append(cell)
        else:
            self._forget(int(self.snap[i]))
        snap = 0
        if snapshot is not None:
            snap = self.next_snap
            self.next_snap += 1
            self.snapshots[snap] = snapshot
            if source is not None:
                self.sources[snap] = source
        self.score[i] = score
        self.length[i] = length
        self.node[i] = node
        self.snap[i] = snap
        self.found_frame[i] = frame
        self.terminal[i] = terminal
        self.goal[i] = int(goal)
        for column in self.metrics.values():
            column[i] = MISSING
        for name, value in (metrics or {}).items():
            if name not in self.metrics:
                self.metrics[check_metric_name(name)] = np.full(
                    len(self.score), MISSING, dtype=np.int64
                )
            self.metrics[name][i] = value
        self.dirty.add(i)
        return status

    def _forget(self, snap: int) -> None:
        for store in (self.snapshots, self.sources):
            if snap in store:
                del store[snap]

    def _append(self, cell: Hashable) -> int:
        i = len(self.cells)
        if i == len(self.score):
            for name in _COLUMNS:
                col = getattr(self, name)
                setattr(self, name, np.concatenate([col, np.zeros_like(col)]))
            for name, col in self.metrics.items():
                self.metrics[name] = np.concatenate([col, np.full_like(col, MISSING)])
        self.cells.append(cell)
        self.index[cell] = i
        for name in _COUNTERS:
            getattr(self, name)[i] = 0
        return i

    def load_columns(
        self,
        cells: list[Hashable],
        columns: dict[str, np.ndarray],
        metrics: Mapping[str, np.ndarray] | None = None,
    ) -> None:
        """Replace the whole contents with these entries, given column by column (``metrics``:
        name -> column, MISSING where an entry has no value)."""
        n = len(cells)
        cap = max(1024, n + n // 2)
        self.cells = list(cells)
        self.index = {c: i for i, c in enumerate(self.cells)}
        for name in _COLUMNS:
            col = np.zeros(cap, dtype=getattr(self, name).dtype)
            col[:n] = columns[name]
            setattr(self, name, col)
        self.metrics = {}
        for name, values in (metrics or {}).items():
            col = np.full(cap, MISSING, dtype=np.int64)
            col[:n] = values
            self.metrics[check_metric_name(name)] = col
        self.dirty = set()

    def row(self, i: int) -> dict:
        """One entry as plain values, metrics included (for the run directory and tests)."""
        row: dict = {name: int(getattr(self, name)[i]) for name in _INT_COLUMNS}
        row["score"] = float(self.score[i])
        row["terminal"] = bool(self.terminal[i])
        row.update((name, int(col[i])) for name, col in self.metrics.items())
        return row

    def rekey(self, key_of_source, sum_counters: bool = True) -> None:
        """Re-key every entry from its source with ``key_of_source(source) -> cell``, keeping
        the best entry per new cell.

        Dynamic downscaling changes what a cell is; entries that now share a cell merge by the
        usual rule and their counters add up (First return, then explore, Ecoffet et al. 2021).
        With ``sum_counters`` false the merged cell keeps its best entry's counters, as the
        reference code's grid recomputation does under ``--reset_cell_on_update``
        (robustified/goexplore_py/goexplore.py, ``maybe_split_dynamic_state``).

        No entry is lost: one that loses its cell to a better one is kept aside (``retired``,
        with its snapshot, source and trajectory) and takes part in every later re-key, where a
        finer shape gives it a cell again. The reference does the same by keeping every former
        archive and re-keying them all (``FormerGrids``). Aside, an entry's counters are zero:
        they were added to its winner's. An entry without a source cannot be re-keyed and is
        dropped, as before.
        """
        n, r = len(self.cells), self.retired
        cols = {
            name: np.concatenate([getattr(self, name)[:n], r.columns[name]]) for name in _COLUMNS
        }
        names = sorted({*self.metrics, *r.metrics})
        metrics = {
            name: np.concatenate([
                self.metrics[name][:n] if name in self.metrics else np.full(n, MISSING),
                r.metrics.get(name, np.full(len(r), MISSING)),
            ]).astype(np.int64)
            for name in names
        }  # fmt: skip
        keys: list[Hashable | None] = []
        for snap in cols["snap"].tolist():
            source = self.sources.get(snap) if snap else None
            if source is None:
                self._forget(snap)
            keys.append(None if source is None else key_of_source(source))
        winner: dict[Hashable, int] = {}
        lost: list[int] = []
        s, g, ln = cols["score"], cols["goal"], cols["length"]
        for i, k in enumerate(keys):
            if k is None:
                continue
            w = winner.setdefault(k, i)
            if w == i:
                continue
            if better(s[i], ln[i], s[w], ln[w], bool(g[i]), bool(g[w])):
                lost.append(w)
                winner[k] = i
            else:
                lost.append(i)
        group_of = {k: j for j, k in enumerate(winner)}
        groups = np.array([-1 if k is None else group_of[k] for k in keys], dtype=np.int64)
        keep = np.fromiter(winner.values(), dtype=np.int64, count=len(winner))
        aside = np.array(sorted(lost), dtype=np.int64)
        columns = {name: col[keep] for name, col in cols.items()}
        counted = groups >= 0
        for name in _COUNTERS if sum_counters else ():
            sums = np.bincount(groups[counted], weights=cols[name][counted], minlength=len(keep))
            columns[name] = sums.astype(np.int64)
        self.retired = Retired(
            {n: np.zeros_like(c[aside]) if n in _COUNTERS else c[aside] for n, c in cols.items()},
            {n: col[aside] for n, col in metrics.items()},
        )
        self.load_columns(list(winner), columns, {name: col[keep] for name, col in metrics.items()})
        self.rekeyed = True
