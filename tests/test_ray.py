"""A real two-node Ray cluster on this machine: a run survives a worker killed mid-run."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("ray")

from stepstone.cli import main  # noqa: E402
from stepstone.store.sqlite import RunStore  # noqa: E402

RAY = str(Path(sys.executable).with_name("ray"))
NODE = [
    "--node-ip-address=127.0.0.1",
    "--num-cpus=1",
    "--object-store-memory=100000000",
    "--disable-usage-stats",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def cluster(tmp_path, monkeypatch):
    """`ray start --head` on loopback plus a second node joining it; stopped afterwards.

    HOME is a fresh directory: a token file that an earlier local ``ray.init()`` left in
    ~/.ray makes a joining node fail authentication. `ray stop` stops every Ray process of
    this machine, so no other Ray job should run alongside the test suite.
    """
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    port = free_port()
    address = f"127.0.0.1:{port}"
    try:
        for args in (
            ["--head", f"--port={port}", "--include-dashboard=false"],
            [f"--address={address}"],
        ):
            done = subprocess.run(
                [RAY, "start", *args, *NODE], capture_output=True, text=True, timeout=120
            )
            assert done.returncode == 0, done.stderr[-2000:]
        yield address
    finally:
        subprocess.run([RAY, "stop", "--force"], capture_output=True, timeout=120)


def actor_pids() -> list[int]:
    out = subprocess.run(["pgrep", "-f", "ray::ExploreActor"], capture_output=True, text=True)
    return [int(p) for p in out.stdout.split()]


def iterations(run_dir: Path) -> int:
    db = run_dir / "run.sqlite"
    if not db.exists():
        return 0
    import sqlite3

    try:
        with sqlite3.connect(db) as c:
            return c.execute("SELECT COUNT(*) FROM metrics").fetchone()[0]
    except sqlite3.Error:
        return 0


def test_run_on_cluster_survives_a_killed_worker(cluster, tmp_path, capsys):
    run_dir = tmp_path / "run"
    cmd = [
        sys.executable,
        "-m",
        "stepstone.cli",
        "explore",
        "montezuma",
        "--cells",
        "ram",
        "--frames",
        "120k",
        "--backend",
        "ray",
        "--address",
        cluster,
        "--workers",
        "2",
        "--run-dir",
        str(run_dir),
        "--no-progress",
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 180
        while (iterations(run_dir) < 2 or len(actor_pids()) < 2) and time.monotonic() < deadline:
            time.sleep(0.5)
        pids = actor_pids()
        assert len(pids) == 2, f"expected 2 exploration actors, found {pids}"
        os.kill(pids[0], signal.SIGKILL)
        out, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err[-2000:]
    assert pids[0] not in actor_pids()  # the killed process is gone ...
    store = RunStore.open(run_dir)
    assert store.state()["frames"] >= 120_000  # ... and the run still reached its budget
    assert max(m.get("reissued", 0) for m in store.metrics()) >= 1  # the lost task re-ran

    capsys.readouterr()
    assert main(["report", str(run_dir), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["cells"] > 20
    assert main(["replay", str(run_dir), "--cell", "all"]) == 0  # a consistent archive
