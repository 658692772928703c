"""Ray: a run on a real two-node cluster survives a killed worker and a killed driver; several
tasks per actor call keep every task answered exactly once through actor deaths."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("ray")

from runs import cli, committed, iterations, wait_for  # noqa: E402

from stepstone.archive import Archive  # noqa: E402
from stepstone.cli import main  # noqa: E402
from stepstone.config import RunOptions  # noqa: E402
from stepstone.engine import Engine, Result, Task  # noqa: E402
from stepstone.errors import ConfigError  # noqa: E402
from stepstone.executors import make  # noqa: E402
from stepstone.executors.ray import RayExecutor, tasks_per_call  # noqa: E402
from stepstone.selectors import Uniform  # noqa: E402
from stepstone.store.sqlite import RunStore  # noqa: E402
from stepstone.trajectories import TrajectoryTree  # noqa: E402

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


def session_pids(sessions: set[int]) -> set[int]:
    """The live processes of these sessions (the sixth field of /proc/PID/stat; a zombie,
    state Z, has ended)."""
    pids = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:  # it ended meanwhile
            continue
        if int(fields[3]) in sessions and fields[0] != "Z":
            pids.add(int(stat.parent.name))
    return pids


def stop(sessions: set[int]) -> None:
    """End the processes of ``sessions``: SIGTERM, then SIGKILL what is left after 15 s."""
    for sig, grace in ((signal.SIGTERM, 15.0), (signal.SIGKILL, 5.0)):
        for pid in session_pids(sessions):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + grace
        while session_pids(sessions) and time.monotonic() < deadline:
            time.sleep(0.2)


@dataclass
class Cluster:
    address: str
    sessions: set[int]  # each node's `ray start` began a session holding its processes

    def actor_pids(self) -> list[int]:
        """This cluster's explore actors (not those of any other Ray on the machine)."""
        out = subprocess.run(["pgrep", "-f", "ray::ExploreActor"], capture_output=True, text=True)
        ours = session_pids(self.sessions)
        return [int(p) for p in out.stdout.split() if int(p) in ours]


@pytest.fixture
def cluster(tmp_path, monkeypatch):
    """`ray start --head` on loopback plus a second node joining it; stopped afterwards.

    HOME is a fresh directory: a token file that an earlier local ``ray.init()`` left in
    ~/.ray makes a joining node fail authentication. Each node starts in a session of its own
    and its own temporary directory, and only those sessions' processes are stopped: `ray
    stop` would stop every Ray process of the machine, a user's cluster with them.
    """
    if not Path("/proc/self/stat").exists():
        pytest.skip("finds the cluster's processes through /proc (Linux)")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    port = free_port()
    address = f"127.0.0.1:{port}"
    # Short: Ray's sockets live under it, and a Unix socket's path is at most 107 bytes.
    temp = tempfile.mkdtemp(prefix="ray")
    sessions: set[int] = set()
    try:
        for args in (
            ["--head", f"--port={port}", "--include-dashboard=false"],
            [f"--address={address}"],
        ):
            proc = subprocess.Popen(
                [RAY, "start", *args, *NODE, f"--temp-dir={temp}"],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                start_new_session=True,
            )  # fmt: skip
            sessions.add(proc.pid)
            _, err = proc.communicate(timeout=120)
            assert proc.returncode == 0, err[-2000:]
        yield Cluster(address, sessions)
    finally:
        stop(sessions)
        shutil.rmtree(temp, ignore_errors=True)


def test_stopping_the_cluster_spares_processes_of_other_sessions():
    """What the fixture stops: its nodes' sessions, children that left their process group
    included (Ray's workers do), and nothing else (a user's own Ray, here a bystander)."""
    if not Path("/proc/self/stat").exists():
        pytest.skip("/proc (Linux)")
    node = subprocess.Popen(
        ["sh", "-c", "sleep 600 & sh -c 'exec sleep 601' & wait"],
        start_new_session=True,
    )
    bystander = subprocess.Popen(["sleep", "602"], start_new_session=True)
    try:
        wait_for(lambda: len(session_pids({node.pid})) == 3, 10)
        stop({node.pid})
        assert session_pids({node.pid}) == set() and node.poll() is not None
        assert bystander.poll() is None
    finally:
        bystander.kill()
        node.kill()


def test_a_local_run_ignores_the_address_a_dead_cluster_left(tmp_path):
    """Ray records the last cluster `ray start` began in its temporary directory, and the file
    outlives the cluster; `--backend ray` without --address starts a local instance anyway
    rather than waiting for the dead one."""
    temp = tempfile.mkdtemp(prefix="rt")  # short: Ray's socket paths live under it
    try:
        (Path(temp) / "ray").mkdir()
        (Path(temp) / "ray" / "ray_current_cluster").write_text("127.0.0.1:1")
        env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
        env.update(RAY_TMPDIR=temp, PYTHONPATH=os.pathsep.join(sys.path))
        run = tmp_path / "run"
        argv = f"explore CartPole-v1 --backend ray --workers 1 --frames 2k --run-dir {run}"
        done = subprocess.run([*cli(argv), "--no-progress"], env=env, capture_output=True,
                              text=True, timeout=300)  # fmt: skip
        assert done.returncode == 0, done.stderr[-2000:]
        assert RunStore.open(run).state()["frames"] >= 2_000
    finally:
        shutil.rmtree(temp, ignore_errors=True)


def reissued(run_dir: Path) -> int:
    return max([m.get("reissued", 0) for m in RunStore.open(run_dir).metrics()], default=0)


def test_cluster_run_survives_a_killed_worker_and_a_killed_driver(cluster, tmp_path):
    run_dir = tmp_path / "run"
    ray_args = f"--backend ray --address {cluster.address} --workers 2 --no-progress"
    cmd = cli(f"explore montezuma --cells ram --frames 50M --run-dir {run_dir} {ray_args}")
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: iterations(run_dir) >= 2 and len(cluster.actor_pids()) == 2, 180)
        victim = cluster.actor_pids()[0]
        os.kill(victim, signal.SIGKILL)  # a worker process dies mid-run ...
        wait_for(lambda: reissued(run_dir) >= 1, 180)  # ... its task is re-issued ...
        assert victim not in cluster.actor_pids()
        wait_for(lambda: len(cluster.actor_pids()) == 2, 120)  # ... and Ray replaces the worker
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


# -- several tasks per actor call, on a local Ray instance -------------------------------------


class Sleeper:
    """A worker that takes 50 ms a task and finds nothing; the task of cell 'poison' kills
    its process. Imported by the actors from this file (``local_ray`` puts it on their path)."""

    def run(self, task):
        if task.cell == "poison":
            os._exit(1)
        time.sleep(0.05)
        return Result(task.task_id, np.zeros(1, np.uint8), 1, [])


def tasks(cells) -> list[Task]:
    return [Task(i, c, b"", 0.0, 0, 0, i) for i, c in enumerate(cells, 1)]


@pytest.fixture(scope="module")
def local_ray():
    import ray

    path = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(Path(__file__).parent), path]))
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        yield
    finally:
        ray.shutdown()
        os.environ.pop("PYTHONPATH")
        if path is not None:
            os.environ["PYTHONPATH"] = path


def collect(ex: RayExecutor, seconds: float = 120) -> list:
    out, deadline = [], time.monotonic() + seconds
    while ex.in_flight and time.monotonic() < deadline:
        out += ex.poll(timeout=1.0)
    assert not ex.in_flight, "tasks still in flight"
    return out


def test_an_actor_killed_mid_call_has_each_of_its_tasks_run_again_once(local_ray):
    ex = RayExecutor(Sleeper, workers=2, per_call=5)
    try:
        assert ex.capacity == 20  # two calls of five in flight per actor
        victim = ex.pids()[0]  # asked first: the actor answers calls in turn
        sent = tasks(["a"] * 20)
        for t in sent:
            ex.submit(t)
        assert len(ex.inflight) == 4  # four calls carry the twenty tasks
        time.sleep(0.1)  # mid-way through its first call
        os.kill(victim, signal.SIGKILL)
        results = collect(ex)
    finally:
        ex.close()
    ids = [r.task_id for r in results]
    assert sorted(ids) == [t.task_id for t in sent]  # each task answered exactly once
    assert ex.replaced == 1 and ex.reissued == 10  # both of its calls, each task alone
    engine = Engine(Archive(), TrajectoryTree(), Uniform())
    engine.pending = {t.task_id: t for t in sent}
    engine.tell_many(results + results[:3])  # a result told twice is merged once
    assert engine.explorations == 20


def test_a_task_that_kills_workers_is_given_up_alone_naming_its_cell(local_ray):
    ex = RayExecutor(Sleeper, workers=2, per_call=4)
    try:
        sent = tasks(["a", "poison", "b", "c"])
        for t in sent:
            ex.submit(t)
        results = collect(ex, 240)
    finally:
        ex.close()
    assert sorted(r.task_id for r in results) == [1, 3, 4]  # its call's others ran, once
    ((task, why),) = ex.given_up()
    assert task.cell == "poison" and why == "it killed 3 worker processes"


def test_tasks_per_call_follow_the_workers_pace(local_ray):
    ex = RayExecutor(Sleeper, workers=2)
    try:
        assert ex.per_call == 1 and ex.capacity == 4  # nothing measured yet: one per call
        n = 0
        while n < 30:  # drive it as loop.drive does: keep ``capacity`` in flight
            for t in tasks(["a"] * (ex.capacity - ex.in_flight)):
                ex.submit(replace(t, task_id=t.task_id + 1000 * n))
            n += len(ex.poll(timeout=5.0))
    finally:
        ex.close()
    assert ex.per_task >= 0.05  # what the actors reported: 50 ms a task, more under load
    assert ex.per_call == tasks_per_call(2, ex.per_task) and ex.capacity == 4 * ex.per_call


@pytest.mark.parametrize(
    "workers, per_task, expected",
    [
        (2, 0.036, 1),  # 56 results/s: calls take 4% of a core unbatched
        (100, 0.036, 20),  # 2,778 results/s x 0.7 ms / 0.1 of a core = 19.4
        (400, 0.036, 28),  # would need 78: capped at the 28 tasks an actor runs in 1 s
        (1000, 0.001, 64),  # capped at 64
        (1, 5.0, 1),  # a slow task: one per call
    ],
)
def test_tasks_per_call_are_as_few_as_keep_the_calls_a_tenth_of_a_core(workers, per_task, expected):
    assert tasks_per_call(workers, per_task) == expected


def test_tasks_per_call_is_for_ray_and_bounded():
    for refuse in (
        lambda: make("processes", Sleeper, 2, per_call=4),
        lambda: RunOptions(frames=1, backend="processes", tasks_per_call=4),  # before any file
    ):
        with pytest.raises(ConfigError, match="--tasks-per-call is for --backend ray"):
            refuse()
    with pytest.raises(ConfigError, match="between 1 and 64"):
        RunOptions(frames=1, backend="ray", tasks_per_call=0)


def test_a_sharded_run_reruns_a_killed_workers_tasks_and_merges_each_once(local_ray, tmp_path):
    """--shards over Ray: the tasks of a killed actor are re-run, every result reaches its
    shards once (told twice, merged once), and the shards' union replays."""
    import functools

    from stepstone.config import ExploreConfig
    from stepstone.shards import ShardedEngine
    from stepstone.worker import Worker

    run = tmp_path / "run"
    config = ExploreConfig(env="ALE/MontezumaRevenge-v5", cells="ram", shards=2)
    RunStore.create(run, config).close()
    factory = functools.partial(Worker.from_config, config)
    engine = ShardedEngine(run, config, {})
    ex = None
    try:
        engine.add_root(factory().root())
        ex = RayExecutor(factory, workers=2, feed=engine.feed, per_call=4)
        victim = ex.pids()[0]
        sent = engine.ask(24)
        for t in sent:
            ex.submit(t)
        time.sleep(0.1)
        os.kill(victim, signal.SIGKILL)
        results = collect(ex)
        stats = engine.tell_many(results + results[:5])
        assert sorted(r.task_id for r in results) == [t.task_id for t in sent]
        assert ex.replaced == 1 and ex.reissued >= 1
        assert engine.explorations == 24 and sum(s.duplicate for s in stats) == 5
        assert engine.cells > 1
        engine.commit_shards()
    finally:
        if ex is not None:
            ex.close()
        engine.close()
    assert main(["replay", str(run), "--cell", "all"]) == 0
