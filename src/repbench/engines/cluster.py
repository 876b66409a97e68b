"""A throw-away multi-node Ray cluster on 127.0.0.1, for tests, benchmarks and trying the Ray engine.

Every node is a real `ray start --block` process (head first, then workers joining it), each in its own
session with its own ports and one temp dir, so "a node" can be lost by killing its session, and
stopping the cluster kills exactly what it started: `ray stop --force` would also kill any other Ray on
the machine (another user's), so it is not used. REPBENCH_KEEP_RAY_TMP=1 keeps the temp dir (the
nodes' logs) after the cluster stops, for debugging a node that would not start.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from repbench.errors import RepbenchError


def free_ports(n: int) -> list[int]:
    """`n` distinct free ports (all held open while picking, so none is handed out twice)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [int(s.getsockname()[1]) for s in socks]
    finally:
        for s in socks:
            s.close()


def _ray_cli() -> str:
    # The `ray` script beside this interpreter, so a venv's Ray is used even when not on PATH.
    beside = Path(sys.executable).with_name("ray")
    return str(beside) if beside.exists() else (shutil.which("ray") or "ray")


@dataclass
class LocalCluster:
    address: str
    temp_dir: Path
    nodes: list[subprocess.Popen] = field(default_factory=list)

    def kill_node(self, index: int) -> None:
        """SIGKILL node `index` (0 = head) with every process of its session: a lost node."""
        _kill_session(self.nodes[index], signal.SIGKILL)
        for proc in self.processes(sessions={self.nodes[index].pid}):
            try:
                proc.kill()  # Ray's daemons may sit in process groups of their own
            except Exception:
                pass

    def processes(self, sessions: set[int] | None = None) -> list:
        """Live processes started by this cluster (psutil objects), found by session id."""
        import psutil

        sessions = sessions if sessions is not None else {p.pid for p in self.nodes}
        found = []
        for proc in psutil.process_iter(["pid"]):
            try:
                if os.getsid(proc.pid) in sessions:
                    found.append(proc)
            except (ProcessLookupError, PermissionError, psutil.Error):
                continue
        return found


def _kill_session(node: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(node.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


_PORT_FLAGS = ("--node-manager-port", "--object-manager-port", "--dashboard-agent-listen-port",
               "--dashboard-agent-grpc-port", "--runtime-env-agent-port", "--metrics-export-port",
               "--min-worker-port")


def _node_ports(ports: list[int]) -> list[str]:
    # Two nodes on one host must not share the fixed default agent ports; workers take ports from min up.
    return [f"{flag}={port}" for flag, port in zip(_PORT_FLAGS, ports, strict=True)] + ["--max-worker-port=0"]


def _wait_for_nodes(address: str, n: int, deadline: float, nodes: list[subprocess.Popen]) -> None:
    # Straight from the GCS: the state API needs the dashboard, which these clusters do not start.
    from ray._raylet import GcsClient
    from ray.core.generated.gcs_pb2 import GcsNodeInfo

    client = None
    while True:
        dead = [p.args for p in nodes if p.poll() is not None]
        if dead:
            raise RepbenchError(f"a Ray node exited while starting: {' '.join(dead[0])}")
        try:
            client = client or GcsClient(address=address)
            alive = client.get_all_node_info(timeout=5, state_filter=GcsNodeInfo.GcsNodeState.ALIVE)
            if len(alive) >= n:
                return
        except Exception:  # the GCS is not up yet
            pass
        if time.monotonic() > deadline:
            raise RepbenchError(f"the local Ray cluster at {address} did not reach {n} nodes in time")
        time.sleep(0.5)


@contextmanager
def local_cluster(n_nodes: int = 2, cpus_per_node: int = 1, object_store_bytes: int = 80 * 2**20,
                  timeout_s: float = 90.0, env: dict[str, str] | None = None) -> Iterator[LocalCluster]:
    """Start a head and `n_nodes - 1` worker nodes on 127.0.0.1; yield; stop them whatever happens."""
    ports = free_ports(1 + n_nodes * len(_PORT_FLAGS))
    port, node_ports = ports[0], [ports[1 + i * len(_PORT_FLAGS):1 + (i + 1) * len(_PORT_FLAGS)] for i in range(n_nodes)]
    address = f"127.0.0.1:{port}"
    # Short path: Ray's unix sockets live under it and must stay below 108 characters.
    temp_dir = Path(tempfile.mkdtemp(prefix="rb-ray-", dir="/tmp"))
    node_env = {**os.environ, **(env or {}), "RAY_USAGE_STATS_ENABLED": "0"}
    common = ["--block", "--node-ip-address=127.0.0.1", f"--num-cpus={cpus_per_node}", "--num-gpus=0",
              f"--object-store-memory={object_store_bytes}", "--disable-usage-stats"]
    cluster = LocalCluster(address=address, temp_dir=temp_dir)
    deadline = time.monotonic() + timeout_s
    log = open(temp_dir / "nodes.log", "ab")
    try:
        head = [_ray_cli(), "start", "--head", f"--port={port}", "--include-dashboard=false",
                f"--temp-dir={temp_dir}", *common, *_node_ports(node_ports[0])]
        cluster.nodes.append(subprocess.Popen(head, env=node_env, stdout=log, stderr=subprocess.STDOUT,
                                              start_new_session=True))
        _wait_for_nodes(address, 1, deadline, cluster.nodes)
        for i in range(1, n_nodes):
            worker = [_ray_cli(), "start", f"--address={address}", *common, *_node_ports(node_ports[i])]
            cluster.nodes.append(subprocess.Popen(worker, env=node_env, stdout=log, stderr=subprocess.STDOUT,
                                                  start_new_session=True))
        _wait_for_nodes(address, n_nodes, deadline, cluster.nodes)
        yield cluster
    finally:
        stop_cluster(cluster)
        log.close()
        if os.environ.get("REPBENCH_KEEP_RAY_TMP") != "1":
            shutil.rmtree(temp_dir, ignore_errors=True)


def stop_cluster(cluster: LocalCluster, grace_s: float = 3.0) -> None:
    """SIGTERM every node's session (workers first), then SIGKILL whatever is left of them."""
    for node in reversed(cluster.nodes):
        _kill_session(node, signal.SIGTERM)
    end = time.monotonic() + grace_s
    while time.monotonic() < end and (any(p.poll() is None for p in cluster.nodes) or cluster.processes()):
        time.sleep(0.2)
    for node in cluster.nodes:
        _kill_session(node, signal.SIGKILL)
    for proc in cluster.processes():
        try:
            proc.kill()
        except Exception:
            pass
    for node in cluster.nodes:
        try:
            node.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
