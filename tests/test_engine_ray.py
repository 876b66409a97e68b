"""`--engine ray` on a real two-node Ray cluster (head + worker node on 127.0.0.1, started with
`ray start`): encode and evaluate ADI with the tiny pair, byte for byte against `--engine local`; then
again with a Ray worker process SIGKILLed mid-shard (Ray restarts it, the job is redone elsewhere, every
shard and cell file is written exactly once); last, a resume of a damaged store during which the worker
node is lost. Mandatory with CI=true; skipped without Ray otherwise.

Ray replaces 127.0.0.1 by the machine's own address where it has one, so the module runs itself again
inside a network namespace that has only `lo` (repbench.engines.netns): there every node listens on
127.0.0.1 and nothing can leave the machine. The cluster tests run only in there.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
from child_env import child_env
from shared_data import require_data

from repbench.cli import main
from repbench.engines.netns import loopback_only, run_in_loopback_namespace
from repbench.errors import RepbenchError

pytestmark = pytest.mark.slow
INSIDE = loopback_only()
inside_namespace = pytest.mark.skipif(not INSIDE, reason="runs inside a loopback-only network namespace, "
                                      "started by test_ray_tests_run_in_a_loopback_only_namespace")

try:
    import ray  # noqa: F401

    HAVE_RAY = True
except ImportError:
    HAVE_RAY = False

SRC = Path(__file__).resolve().parents[1] / "src"
# --threads 1: the Ray actors run one torch thread each (--ray-cpus-per-worker 1), and a local run's own default
# (one per core) can change the last bits of the vectors, so the reference must use the actors' count.
ENCODE = ["--backbone", "tiny-diffusion", "--k", "4", "--shard-size", "12", "--device", "cpu", "--threads", "1"]
EVALUATE = ["--backbone", "tiny-ar", "--kq", "1,2", "--kp", "1,4", "--modes", "all", "--shard-size", "12", "--threads", "1",
            "--keep-self-hits", "--max-length", "128", "--no-progress"]
TIME_BOUND_S = 480  # the whole module (100-180 s measured); past it a watchdog stops the cluster, so nothing hangs


def _require_ray() -> None:
    if not HAVE_RAY:
        if os.environ.get("CI") == "true":
            pytest.fail("CI=true but Ray is not importable (make test installs requirements-ray.lock)")
        pytest.skip("Ray is not installed (pip install 'repbench[ray]' or -r requirements-ray.lock)")


@contextmanager
def _one_thread():
    # --threads 1 sets this process's torch threads for the reference run; put the count back afterwards.
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@pytest.mark.skipif(INSIDE, reason="already inside the namespace: the cluster tests below run here")
def test_ray_tests_run_in_a_loopback_only_namespace():
    _require_ray()
    repo = Path(__file__).resolve().parents[1]
    env = child_env(PYTHONPATH=os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]))
    try:
        done = run_in_loopback_namespace([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                                          "-m", "slow", str(Path(__file__).resolve())], cwd=repo, env=env,
                                         timeout_s=TIME_BOUND_S + 120)
    except RepbenchError as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true but {exc}")
        pytest.skip(str(exc))
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"the namespaced Ray tests ran past {exc.timeout:.0f} s:\n{(exc.output or '')[-4000:]}")
    print(done.stdout[-3000:])
    assert done.returncode == 0, done.stdout[-6000:]
    assert "5 passed" in done.stdout, done.stdout[-3000:]


@pytest.fixture(scope="module")
def cluster():
    _require_ray()
    from repbench.engines.cluster import local_cluster

    env = {"PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]), "HF_HUB_OFFLINE": "1",
           "OMP_NUM_THREADS": "1"}
    with local_cluster(n_nodes=2, cpus_per_node=1, timeout_s=120, env=env) as c:
        watchdog = threading.Timer(TIME_BOUND_S, lambda: [c.kill_node(i) for i in range(len(c.nodes))])
        watchdog.daemon = True
        watchdog.start()
        try:
            yield c
        finally:
            watchdog.cancel()
    left = [p for p in c.processes() if p.status() != "zombie"]
    assert not left, f"Ray processes left running: {[(p.pid, p.name()) for p in left]}"


@pytest.fixture(scope="module")
def adi():
    return require_data("adi")


@pytest.fixture(scope="module")
def local_run(adi, tmp_path_factory):
    out = tmp_path_factory.mktemp("local")
    with _one_thread():
        assert main(["encode", str(adi / "corpus.jsonl"), *ENCODE, "--out", str(out / "enc")]) == 0
        assert main(["evaluate", "--dataset", str(adi), *EVALUATE, "--out", str(out / "ev")]) == 0
    return out


def _ray_run(cluster, adi: Path, out: Path, kill_method: str | None = None) -> dict:
    """Both commands through --engine ray; with `kill_method`, SIGKILL the first actor seen running it."""
    ray_args = ["--engine", "ray", "--ray-address", cluster.address]
    watch = _Watcher(cluster, out, kill_method)
    watch.start()
    try:
        assert main(["encode", str(adi / "corpus.jsonl"), *ENCODE, "--out", str(out / "enc"), *ray_args]) == 0
        if kill_method is not None:
            watch.rearm("encode_rows")
        assert main(["evaluate", "--dataset", str(adi), *EVALUATE, "--out", str(out / "ev"), *ray_args]) == 0
    finally:
        watch.stop()
    return {"killed": watch.killed, "inodes": watch.inodes}


class _Watcher(threading.Thread):
    """Polls the cluster's processes (to kill an actor mid-task) and the output files' inodes.

    Every write goes through a temp file and a rename, so a file written twice shows two inodes.
    """

    def __init__(self, cluster, out: Path, kill_method: str | None, times: int = 1):
        super().__init__(daemon=True)
        self.cluster, self.out, self.kill_method, self.times = cluster, out, kill_method, times
        self.killed: list[tuple[int, str]] = []
        self.inodes: dict[str, set[int]] = {}
        self._done = threading.Event()

    def rearm(self, method: str) -> None:
        self.kill_method = method

    def stop(self) -> None:
        self._done.set()
        self.join(timeout=10)
        self._scan_files()

    def _scan_files(self) -> None:
        for pattern in ("enc/shard_*", "ev/cells/*.csv"):
            for path in self.out.glob(pattern):
                try:
                    self.inodes.setdefault(str(path.relative_to(self.out)), set()).add(path.stat().st_ino)
                except FileNotFoundError:
                    pass

    def run(self) -> None:
        while not self._done.is_set():
            self._scan_files()
            method = self.kill_method
            if method is not None:
                for proc in self.cluster.processes():
                    try:
                        title = " ".join(proc.cmdline())
                    except Exception:
                        continue
                    # Ray titles an actor process by the method it is executing.
                    if f"ShardWorker.{method}" in title and proc.pid not in {p for p, _ in self.killed}:
                        os.kill(proc.pid, signal.SIGKILL)
                        self.killed.append((proc.pid, method))
                        if sum(m == method for _, m in self.killed) >= self.times:
                            self.kill_method = None
                        break
            time.sleep(0.02)


def _assert_identical(local: Path, other: Path) -> None:
    shards = sorted(p.name for p in (local / "enc").glob("shard_*"))
    assert len(shards) == 2 * 7  # 82 ADI documents in shards of 12: 7 shards, .safetensors + .json
    assert sorted(p.name for p in (other / "enc").glob("shard_*")) == shards
    for name in [*shards, "config.json"]:
        assert (other / "enc" / name).read_bytes() == (local / "enc" / name).read_bytes(), name
    assert (local / "ev" / "signals.csv").exists()
    for rel in ["per_query.csv", "summary.csv", "signals.csv",
                # reps/: the cached query sides and signals tables; a passage side is a store directory whose
                # shard layout may follow the engine (what it scores to is compared through runs and cells)
                *(f"{d}/{p.name}" for d in ("runs", "cells", "reps") for p in (local / "ev" / d).iterdir()
                  if p.is_file())]:
        assert (other / "ev" / rel).read_bytes() == (local / "ev" / rel).read_bytes(), rel


@inside_namespace
def test_ray_engine_is_byte_identical_to_local(cluster, adi, local_run, tmp_path):
    t0 = time.perf_counter()
    result = _ray_run(cluster, adi, tmp_path)
    _assert_identical(local_run, tmp_path)
    assert all(len(v) == 1 for v in result["inodes"].values()), result["inodes"]
    print(f"ray encode+evaluate on 2 nodes: {time.perf_counter() - t0:.1f}s")


@inside_namespace
def test_ray_engine_survives_a_killed_worker(cluster, adi, local_run, tmp_path, capsys):
    result = _ray_run(cluster, adi, tmp_path, kill_method="encode_shard")
    assert [m for _, m in result["killed"]] == ["encode_shard", "encode_rows"], result["killed"]
    _assert_identical(local_run, tmp_path)
    # Exactly once: no shard or cell file was ever replaced by a second write.
    twice = {k: v for k, v in result["inodes"].items() if len(v) != 1}
    assert not twice, twice
    # Ray now retries the killed actor's task on its restarted process itself (max_task_retries), so the
    # driver never sees the loss: no "a Ray worker died" line is required.


@inside_namespace
def test_a_one_actor_pool_survives_its_only_actor_killed_twice(cluster, adi, local_run, tmp_path):
    """One actor, SIGKILLed twice mid-shard: Ray restarts it and retries the task each time (a ready()
    probe used to fail during the restart and drop the actor: 'every Ray worker is lost')."""
    watch = _Watcher(cluster, tmp_path, "encode_shard", times=2)
    watch.start()
    try:
        assert main(["encode", str(adi / "corpus.jsonl"), *ENCODE, "--out", str(tmp_path / "enc"), "--engine", "ray",
                     "--ray-address", cluster.address, "--ray-workers", "1"]) == 0
    finally:
        watch.stop()
    assert [m for _, m in watch.killed] == ["encode_shard", "encode_shard"], watch.killed
    assert len({pid for pid, _ in watch.killed}) == 2  # the restarted actor was killed too
    shards = sorted(p.name for p in (local_run / "enc").glob("shard_*"))
    assert sorted(p.name for p in (tmp_path / "enc").glob("shard_*")) == shards
    for name in [*shards, "config.json"]:
        assert (tmp_path / "enc" / name).read_bytes() == (local_run / "enc" / name).read_bytes(), name
    twice = {k: v for k, v in watch.inodes.items() if len(v) != 1}
    assert not twice, twice


DIFFUSION_EVALUATE = ["--backbone", "tiny-diffusion", "--kq", "1", "--threads", "1", "--kp", "1,2", "--modes", "all", "--shard-size",
                      "30", "--keep-self-hits", "--max-length", "128", "--no-progress"]


@inside_namespace
def test_ray_evaluate_with_a_diffusion_backbone_is_byte_identical(cluster, adi, tmp_path):
    """DiffRetriever's own case: a diffusion backbone (the parallel encoder needs the mask token the driver
    reads from the workers) swept on Ray, byte for byte against --engine local."""
    with _one_thread():
        assert main(["evaluate", "--dataset", str(adi), *DIFFUSION_EVALUATE, "--out", str(tmp_path / "local")]) == 0
    assert main(["evaluate", "--dataset", str(adi), *DIFFUSION_EVALUATE, "--out", str(tmp_path / "ray"), "--engine",
                 "ray", "--ray-address", cluster.address]) == 0
    local, other = tmp_path / "local", tmp_path / "ray"
    for rel in ["per_query.csv", "summary.csv",
                *(f"{d}/{p.name}" for d in ("runs", "cells", "reps") for p in (local / d).iterdir()
                  if p.is_file())]:  # a passage store (a directory) is compared through what it scores to
        assert (other / rel).read_bytes() == (local / rel).read_bytes(), rel


@inside_namespace
def test_ray_engine_loses_a_node_then_resumes_from_verified_shards(cluster, adi, local_run, tmp_path, capsys):
    """A store left by a lost run (shards missing, one truncated) is resumed: only what is not verified is
    encoded, and the worker node is killed (raylet and all) during that run: its job finishes on the head.
    Runs last: the cluster has one node afterwards."""
    enc = tmp_path / "enc"
    enc.mkdir()
    for p in (local_run / "enc").glob("shard_0000[0-3].*"):
        (enc / p.name).write_bytes(p.read_bytes())
    (enc / "config.json").write_bytes((local_run / "enc" / "config.json").read_bytes())
    damaged = enc / "shard_00001.safetensors"
    damaged.write_bytes(damaged.read_bytes()[:100])  # truncated by the lost node
    kept = {p.name: p.stat().st_ino for p in enc.glob("shard_0000[023].*")}
    lost = _NodeKiller(cluster, node=1)
    lost.start()
    try:
        ray_args = ["--engine", "ray", "--ray-address", cluster.address]
        assert main(["encode", str(adi / "corpus.jsonl"), *ENCODE, "--out", str(enc), *ray_args]) == 0
    finally:
        lost.stop()
    assert lost.killed, "the worker node never ran a shard"
    assert {n: (enc / n).stat().st_ino for n in kept} == kept  # verified shards were not rewritten
    for p in (local_run / "enc").glob("shard_*"):
        assert (enc / p.name).read_bytes() == p.read_bytes(), p.name
    assert "a Ray worker died" in capsys.readouterr().err


class _NodeKiller(threading.Thread):
    """SIGKILLs a whole worker node (its raylet, agents and workers) once the shards are being encoded."""

    def __init__(self, cluster, node: int):
        super().__init__(daemon=True)
        self.cluster, self.node, self.killed = cluster, node, False
        self._done = threading.Event()

    def stop(self) -> None:
        self._done.set()
        self.join(timeout=10)

    def run(self) -> None:
        # The first shard seen running anywhere: the driver hands every actor a job at once, so the node's
        # own actor holds one now (watching only that actor can miss its 0.2 s shards).
        while not self._done.is_set() and not self.killed:
            for proc in self.cluster.processes():
                try:
                    if "ShardWorker.encode_shard" in " ".join(proc.cmdline()):
                        self.cluster.kill_node(self.node)
                        self.killed = True
                        break
                except Exception:
                    continue
            time.sleep(0.02)
