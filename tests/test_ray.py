"""A real two-node Ray cluster on this machine: a run survives a worker killed mid-run."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("ray")

from runs import cli, committed, iterations, wait_for  # noqa: E402

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


def reissued(run_dir: Path) -> int:
    return max([m.get("reissued", 0) for m in RunStore.open(run_dir).metrics()], default=0)


def test_cluster_run_survives_a_killed_worker_and_a_killed_driver(cluster, tmp_path):
    run_dir = tmp_path / "run"
    ray_args = f"--backend ray --address {cluster} --workers 2 --no-progress"
    cmd = cli(f"explore montezuma --cells ram --frames 50M --run-dir {run_dir} {ray_args}")
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: iterations(run_dir) >= 2 and len(actor_pids()) == 2, 180)
        victim = actor_pids()[0]
        os.kill(victim, signal.SIGKILL)  # a worker process dies mid-run ...
        wait_for(lambda: reissued(run_dir) >= 1, 180)  # ... its task is re-issued ...
        assert victim not in actor_pids()
        wait_for(lambda: len(actor_pids()) == 2, 120)  # ... and Ray replaces the worker
        n = iterations(run_dir)
        wait_for(lambda: iterations(run_dir) >= n + 1, 120)
    finally:
        proc.send_signal(signal.SIGKILL)  # then the driver dies too
        proc.wait()

    before = committed(run_dir)
    target = RunStore.open(run_dir).state()["frames"] + 40_000
    assert main(f"resume {run_dir} --frames {target} {ray_args}".split()) == 0
    after = RunStore.open(run_dir)
    assert after.state()["frames"] >= target
    archive = after.load_archive()
    for cell, (score, length) in before.items():  # nothing committed was lost
        e = archive.get(cell)
        assert e is not None and (e.score > score or (e.score == score and e.length <= length))
    assert main(["replay", str(run_dir), "--cell", "all"]) == 0  # a consistent archive
