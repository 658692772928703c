"""Faults never lose a run: failed commits, dead workers, two writers, tampered directories."""

from __future__ import annotations

import json
import os
import pickle
import signal
import sqlite3
import subprocess
import sys
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
from runs import cli, ctrl_c_default, iterations, wait_for

from stepstone import codec
from stepstone.config import ExploreConfig
from stepstone.engine import Found, Result, Task
from stepstone.errors import CommitFailed, StepstoneError
from stepstone.executors.processes import ProcessExecutor
from stepstone.selectors import CountBased
from stepstone.store.sqlite import RunStore
from stepstone.trajectories import TrajectoryTree

CONFIG = ExploreConfig(env="CartPole-v1")


def grow(engine, rounds: int, seed: int) -> None:
    """Merge made-up results: new cells with snapshots and trajectory segments."""
    rng = np.random.default_rng(seed)
    for k in range(rounds):
        for task in engine.ask(2):
            cell = ("cell", seed, k, int(rng.integers(1000)))
            snap = rng.bytes(2000)
            found = [Found(cell, float(rng.integers(3)), 2, snap)]
            actions = rng.integers(0, 2, 3).astype(np.uint8)
            engine.tell(Result(task.task_id, actions, 3, found, seen=[task.cell]))


def assert_complete(path: Path) -> int:
    """Every entry's snapshot and trajectory are in the directory; returns the entry count."""
    store = RunStore.open(path)
    engine = store.load_engine(CountBased())
    tree = TrajectoryTree(store.nodes)
    for e in engine.archive:
        assert len(store.snapshots[e.snap]) > 0
        assert len(tree.actions(e.node, e.length)) == e.length
    store.close()
    return len(engine.archive)


class FailingDb:
    """A connection whose writes of one table fail, as a full disk or an I/O error would."""

    def __init__(self, db, table: str, error: str = "database or disk is full"):
        self.db, self.table, self.error = db, table, error

    def executemany(self, sql, rows):
        if self.table in sql:
            raise sqlite3.OperationalError(self.error)
        return self.db.executemany(sql, rows)

    def __getattr__(self, name):
        return getattr(self.db, name)

    def __enter__(self):
        return self.db.__enter__()

    def __exit__(self, *exc):
        return self.db.__exit__(*exc)


@pytest.mark.parametrize("table", ["snapshots", "nodes", "entries"])
def test_a_failed_commit_keeps_the_last_commit_and_the_queue(tmp_path, table):
    store = RunStore.create(tmp_path / "run", CONFIG)
    engine = store.load_engine(CountBased())
    engine.add_root(Found(("root",), 0.0, 0, b"root"))
    grow(engine, 5, seed=1)
    store.commit(engine, {"iteration": 1, "frames": engine.frames})
    committed = assert_complete(tmp_path / "run")
    grow(engine, 5, seed=2)
    queued = len(store.snapshots.pending)
    real = store.db
    for t in (store.snapshots, store.sources, store.nodes):
        t.db = FailingDb(real, table)
    store.db = FailingDb(real, table)
    with pytest.raises(CommitFailed, match="disk full.*stepstone resume"):
        store.commit(engine, {"iteration": 2, "frames": engine.frames})
    assert assert_complete(tmp_path / "run") == committed  # the last commit, intact
    assert len(store.snapshots.pending) == queued  # nothing dropped from memory
    for t in (store.snapshots, store.sources, store.nodes):
        t.db = real
    store.db = real
    store.commit(engine, {"iteration": 2, "frames": engine.frames})  # space is back
    store.close()
    assert assert_complete(tmp_path / "run") == len(engine.archive) > committed


def test_a_database_that_fills_up_keeps_every_commit(tmp_path):
    """A size-limited database file (SQLite's max_page_count) fills mid-run like a disk."""
    store = RunStore.create(tmp_path / "run", CONFIG)
    engine = store.load_engine(CountBased())
    engine.add_root(Found(("root",), 0.0, 0, b"root"))
    store.commit(engine)
    pages = store.db.execute("PRAGMA page_count").fetchone()[0]
    store.db.execute(f"PRAGMA max_page_count = {pages + 12}")  # about 48 kB more
    failed = 0
    for k in range(12):
        grow(engine, 3, seed=10 + k)
        try:
            store.commit(engine, {"iteration": k + 1, "frames": engine.frames})
        except CommitFailed as e:
            assert "disk full" in str(e) and "MB free" in str(e)
            failed += 1
    assert failed > 0
    assert_complete(tmp_path / "run")
    store.db.execute("PRAGMA max_page_count = 1000000")
    store.commit(engine, {"iteration": 99, "frames": engine.frames})
    store.close()
    assert assert_complete(tmp_path / "run") == len(engine.archive)


@pytest.fixture
def small_disk(tmp_path):
    """A 600 kB tmpfs (root only; CI runs as root) and a function that grows it."""
    mnt = tmp_path / "disk"
    mnt.mkdir()
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=600k", "tmpfs", str(mnt)],
                          capture_output=True)  # fmt: skip
    if made.returncode != 0:
        pytest.skip("mounting a tmpfs needs root; the injected-error tests cover the logic")
    yield mnt, lambda: subprocess.run(["mount", "-o", "remount,size=64m", str(mnt)], check=True)
    subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_a_full_disk_stops_the_run_with_one_line_and_resume_continues(small_disk):
    disk, grow_disk = small_disk
    run = disk / "run"
    explore = cli(f"explore montezuma --cells ram --frames 100k --workers 2 --run-dir {run} "
                  "--no-progress")  # fmt: skip
    done = subprocess.run(explore, capture_output=True, text=True, timeout=300)
    assert done.returncode == 1, done.stderr
    assert done.stderr.count("\n") == 1 and "disk full" in done.stderr
    assert "Traceback" not in done.stderr
    grow_disk()
    resumed = subprocess.run(cli(f"resume {run} --no-progress"), capture_output=True,
                             text=True, timeout=300)  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr
    replayed = subprocess.run(cli(f"replay {run} --cell all"), capture_output=True, text=True,
                              timeout=300)  # fmt: skip
    assert replayed.returncode == 0, replayed.stderr


def test_a_read_only_run_directory_is_read_and_not_called_corrupt(small_disk):
    disk, grow_disk = small_disk
    grow_disk()
    run = disk / "run"
    explore = cli(f"explore montezuma --cells ram --frames 5k --workers 1 --run-dir {run} "
                  "--no-progress")  # fmt: skip
    assert subprocess.run(explore, capture_output=True, timeout=300).returncode == 0
    subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)
    report = subprocess.run(cli(f"report {run} --json"), capture_output=True, text=True)
    assert report.returncode == 0 and '"cells"' in report.stdout, report.stderr
    replay = subprocess.run(cli(f"replay {run}"), capture_output=True, text=True)
    assert replay.returncode == 0, replay.stderr
    resume = subprocess.run(cli(f"resume {run} --frames 10k"), capture_output=True, text=True)
    assert resume.returncode == 2 and "read-only" in resume.stderr
    assert "corrupt" not in resume.stderr and resume.stderr.count("\n") == 1


# -- dead workers ------------------------------------------------------------------------------


class Suicidal:
    """A worker that dies (SIGKILL) on task 3, and answers every other task."""

    def run(self, task):
        if task.task_id == 3:
            os.kill(os.getpid(), signal.SIGKILL)
        return Result(task.task_id, np.zeros(1, np.uint8), 1, [])

    def close(self):
        pass


def task(i: int) -> Task:
    return Task(i, ("cell", i), b"", 0.0, 0, 0, i)


@pytest.mark.parametrize("deterministic", [False, True])
def test_a_task_that_kills_its_worker_three_times_is_given_up_and_the_rest_done(deterministic):
    ex = ProcessExecutor(Suicidal, workers=2, deterministic=deterministic)
    try:
        for i in range(1, 9):
            ex.submit(task(i))
        got = []
        deadline = time.monotonic() + 60
        while ex.in_flight and time.monotonic() < deadline:
            got += [r.task_id for r in ex.poll(timeout=1.0)]
        assert sorted(got) == [1, 2, 4, 5, 6, 7, 8]
        if deterministic:
            assert got == [1, 2, 4, 5, 6, 7, 8]
        assert [(t.task_id, t.cell) for t, _ in ex.failed] == [(3, ("cell", 3))]
        assert ex.replaced == 3 and ex.alive == 2
    finally:
        ex.close()


class Unbuildable:
    def __init__(self):
        raise ValueError("no such environment here")


class DiesAtStart:
    def __init__(self):
        os._exit(3)


@pytest.mark.parametrize("factory, says", [(Unbuildable, "could not start: ValueError"),
                                           (DiesAtStart, "die as they start")])  # fmt: skip
def test_workers_that_cannot_start_stop_the_run_instead_of_respawning(factory, says):
    ex = ProcessExecutor(factory, workers=2)
    try:
        ex.submit(task(1))
        with pytest.raises(StepstoneError, match=says):
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                ex.poll(timeout=1.0)
    finally:
        ex.close()


def worker_pids(driver: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(driver), "-f", "spawn_main"],
                         capture_output=True, text=True)  # fmt: skip
    return [int(p) for p in out.stdout.split()]


def test_killing_a_worker_does_not_end_the_run(tmp_path):
    run = tmp_path / "run"
    proc = subprocess.Popen(
        cli(f"explore montezuma --cells ram --frames 200k --workers 2 --run-dir {run} "
            "--no-progress"),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    wait_for(lambda: iterations(run) >= 2, 120)
    for _ in range(2):
        os.kill(worker_pids(proc.pid)[0], signal.SIGKILL)
        time.sleep(1.0)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    store = RunStore.open(run)
    last = store.metrics()[-1]
    assert last["workers_replaced"] >= 2 and last["frames"] >= 200_000
    report = subprocess.run(cli(f"report {run} --json"), capture_output=True, text=True)
    summary = json.loads(report.stdout)
    assert summary["workers_replaced"] >= 2 and summary["tasks_reissued"] >= 2
    assert subprocess.run(cli(f"replay {run} --cell all"), capture_output=True).returncode == 0


# -- one writer --------------------------------------------------------------------------------


def test_a_second_writer_is_refused_and_a_killed_holder_does_not_block(tmp_path):
    run = tmp_path / "run"
    first = subprocess.Popen(
        cli(f"explore montezuma --cells ram --frames 50M --workers 1 --run-dir {run} "
            "--no-progress"), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_for(lambda: iterations(run) >= 1, 120)
        second = subprocess.run(cli(f"resume {run} --frames 60M --no-progress"),
                                capture_output=True, text=True, timeout=120)  # fmt: skip
        assert second.returncode == 2
        assert f"pid {first.pid}" in second.stderr and "in use" in second.stderr
        assert second.stderr.count("\n") == 1
        # a report read meanwhile says the run is under way, and suggests no resume of it
        during = subprocess.run(cli(f"report {run}"), capture_output=True, text=True)
        assert f"in progress: another process is running it (pid {first.pid} " in during.stdout
        assert "stepstone resume" not in during.stdout
    finally:
        first.kill()  # SIGKILL: the lock file stays, the lock does not
        first.wait()
    after = subprocess.run(cli(f"report {run}"), capture_output=True, text=True).stdout
    assert "in progress" not in after  # stopped short of its budget: resume goes on to it
    assert f"stepstone resume {run}    # on to its budget of 50M frames" in after
    frames = RunStore.open(run).state()["frames"]
    resumed = subprocess.run(cli(f"resume {run} --frames {frames + 20000} --no-progress"),
                             capture_output=True, text=True, timeout=300)  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr


# -- nothing from a run directory is executed ----------------------------------------------------


class Payload:
    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def small_run(tmp_path, env: str = "CartPole-v1", extra: str = "") -> Path:
    run = tmp_path / "run"
    cmd = cli(f"explore {env} --frames 3k --workers 1 --run-dir {run} --no-progress {extra}")
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return run


def test_a_pickled_cell_in_a_run_directory_is_not_run(tmp_path):
    run = small_run(tmp_path, env="montezuma", extra="--cells ram")
    marker = tmp_path / "pwned"
    with sqlite3.connect(run / "run.sqlite") as db:
        db.execute("UPDATE entries SET cell = ? WHERE idx = 0", (pickle.dumps(Payload(marker)),))
    for command in ("report", "replay", "resume"):
        done = subprocess.run(cli(f"{command} {run}"), capture_output=True, text=True, timeout=120)
        assert done.returncode == 2 and "not stepstone data" in done.stderr, done.stderr
        assert not marker.exists()


def test_pickled_snapshots_resume_only_when_signed_here_or_trusted(tmp_path):
    """--return deepcopy: a run you wrote resumes as is; one written by another account (another
    HOME, so another key) only with --trust-run-dir, after which it is yours."""
    mine, theirs = tmp_path / "me", tmp_path / "them"
    as_them = {**os.environ, "HOME": str(theirs)}
    run = tmp_path / "run"
    cmd = cli(f"explore CartPole-v1 --return deepcopy --frames 3k --workers 1 --run-dir {run} "
              "--no-progress")  # fmt: skip
    assert subprocess.run(cmd, capture_output=True, env=as_them, timeout=300).returncode == 0
    as_me = {**os.environ, "HOME": str(mine)}

    def resume(frames: str, *flags: str):
        args = cli(f"resume {run} --frames {frames} --no-progress {' '.join(flags)}")
        return subprocess.run(args, capture_output=True, text=True, env=as_me, timeout=300)

    done = resume("4k")
    assert done.returncode == 2 and "--trust-run-dir" in done.stderr, done.stderr
    assert resume("4k", "--trust-run-dir").returncode == 0
    assert resume("5k").returncode == 0  # adopted: signed with my key from then on
    with sqlite3.connect(run / "run.sqlite") as db:  # a pickle swapped in, checksum and all
        payload = pickle.dumps(Payload(str(tmp_path / "pwned")))
        blob = payload + zlib.crc32(payload).to_bytes(4, "little") + bytes(32)
        db.execute("UPDATE snapshots SET data = ?", (blob,))
    done = resume("6k")
    assert done.returncode == 2 and "not written by this account" in done.stderr
    assert not (tmp_path / "pwned").exists()


def test_a_garbled_snapshot_is_caught_by_its_checksum(tmp_path):
    run = small_run(tmp_path, env="montezuma", extra="--cells ram")
    with sqlite3.connect(run / "run.sqlite") as db:
        (blob,) = db.execute("SELECT data FROM snapshots ORDER BY id LIMIT 1").fetchone()
        garbled = blob[:100] + bytes(b ^ 0xFF for b in blob[100:200]) + blob[200:]
        db.execute("UPDATE snapshots SET data = ?", (garbled,))
    done = subprocess.run(cli(f"resume {run} --frames 10k --no-progress"), capture_output=True,
                          text=True, timeout=120)  # fmt: skip
    assert done.returncode == 2 and "damaged" in done.stderr, done.stderr
    assert done.stderr.count("\n") == 1


def to_format_1(run: Path) -> None:
    """Rewrite a run directory as stepstone's run format 1 wrote it (pickled cells)."""
    with sqlite3.connect(run / "run.sqlite") as db:
        for rowid, blob in db.execute("SELECT rowid, cell FROM entries").fetchall():
            cell = pickle.dumps(codec.unpack(blob), protocol=5)
            db.execute("UPDATE entries SET cell = ? WHERE rowid = ?", (cell, rowid))
        for i, blob in db.execute("SELECT id, data FROM snapshots").fetchall():
            db.execute("UPDATE snapshots SET data = ? WHERE id = ?", (blob[:-4], i))
        db.execute("UPDATE meta SET value = '1' WHERE key = 'version'")


def test_format_1_is_refused_with_the_command_that_converts_it(tmp_path):
    run = small_run(tmp_path, env="montezuma", extra="--cells ram")
    before = RunStore.open(run).load_archive()
    to_format_1(run)
    done = subprocess.run(cli(f"report {run}"), capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and f"stepstone migrate {run} --trust-run-dir" in done.stderr
    assert subprocess.run(cli(f"migrate {run}"), capture_output=True).returncode == 2
    done = subprocess.run(cli(f"migrate {run} --trust-run-dir"), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    after = RunStore.open(run).load_archive()
    assert after.cells == before.cells and list(after) == list(before)
    done = subprocess.run(cli(f"replay {run} --cell all"), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    # converted, nothing is unpickled again: no trust asked to say there is nothing to do
    done = subprocess.run(cli(f"migrate {run}"), capture_output=True, text=True)
    assert done.returncode == 0 and "already in run format 2: nothing to do" in done.stdout


# -- determinism ---------------------------------------------------------------------------------


def archive_rows(run: Path) -> list:
    with sqlite3.connect(run / "run.sqlite") as db:
        return db.execute("SELECT * FROM entries ORDER BY idx").fetchall()


def test_deterministic_reproduces_a_run_with_two_workers(tmp_path):
    rows = []
    for name in ("a", "b"):
        run = tmp_path / name
        cmd = cli(f"explore montezuma --cells ram --frames 30k --workers 2 --deterministic "
                  f"--run-dir {run} --no-progress")  # fmt: skip
        assert subprocess.run(cmd, capture_output=True, timeout=300).returncode == 0
        rows.append(archive_rows(run))
    assert rows[0] == rows[1] and len(rows[0]) > 10


def test_sigint_with_no_progress_exits_130_and_says_so(tmp_path):
    run = tmp_path / "run"
    proc = subprocess.Popen(
        cli(f"explore montezuma --cells ram --frames 50M --workers 2 --run-dir {run} "
            "--no-progress"), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        preexec_fn=ctrl_c_default,
    )  # fmt: skip
    try:
        wait_for(lambda: iterations(run) >= 1, 120)
        proc.send_signal(signal.SIGINT)
        err = proc.communicate(timeout=60)[1]
    finally:
        if proc.poll() is None:  # not left running its 50M frames when the test fails
            proc.kill()
    assert proc.returncode == 130
    assert "interrupted" in err and f"stepstone resume {run}" in err
    assert "Traceback" not in err


if sys.platform != "linux":  # flock, tmpfs, pgrep: the CI machine's kernel
    pytestmark = pytest.mark.skip("Linux only")
