"""Run a command inside a network namespace that has only the loopback interface.

Ray's `ray start` swaps 127.0.0.1 for the machine's own address when the machine has one, so a
"local" test cluster would listen on a real interface. Inside a fresh network namespace (`unshare
--net`, root or a user namespace) the only interface is `lo`, so every Ray port binds to 127.0.0.1
and no traffic can leave the machine. Tests and benchmarks that start a cluster re-run themselves
through `run_in_loopback_namespace` unless `loopback_only()` already holds.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from collections.abc import Callable, Sequence

from repbench.errors import RepbenchError

ENV_FLAG = "REPBENCH_IN_LOOPBACK_NETNS"


def loopback_only(interfaces: Callable[[], list[tuple[int, str]]] = socket.if_nameindex) -> bool:
    """True when this process's network namespace has no interface other than `lo`.

    Asks the kernel (if_nameindex), not /sys/class/net: sysfs keeps showing the parent namespace's
    interfaces after `unshare --net` unless it is remounted.
    """
    try:
        names = {name for _, name in interfaces()}
    except OSError:
        return False
    return names <= {"lo"}


def run_in_loopback_namespace(argv: Sequence[str], cwd: str | os.PathLike | None = None,
                              env: dict[str, str] | None = None, timeout_s: float = 900.0
                              ) -> subprocess.CompletedProcess:
    """`argv` in a new network namespace with `lo` up; stdout and stderr captured together.

    Raises RepbenchError when namespaces cannot be made here (no unshare, or not permitted).
    """
    unshare, ip = shutil.which("unshare"), shutil.which("ip") or "/usr/sbin/ip"
    if unshare is None:
        raise RepbenchError("`unshare` (util-linux) is not installed: cannot make a loopback-only network namespace")
    probe = subprocess.run([unshare, "--net", "true"], capture_output=True, text=True)
    if probe.returncode != 0:
        raise RepbenchError(f"cannot make a network namespace here ({probe.stderr.strip() or 'unshare --net failed'}); "
                            "run as root or where user namespaces are allowed")
    script = f'{ip} link set lo up && exec "$@"'
    return subprocess.run([unshare, "--net", "--", "sh", "-c", script, "sh", *argv], cwd=cwd,
                          env={**(env or os.environ), ENV_FLAG: "1"}, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=timeout_s)
