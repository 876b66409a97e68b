"""The environment for a child `python -m pytest` a test starts."""
from __future__ import annotations

import os


def child_env(**extra: str) -> dict[str, str]:
    """os.environ plus `extra`, without the variables pytest-xdist sets in its workers: a child pytest that
    inherits PYTEST_XDIST_WORKER believes it is a worker (pytest-benchmark then disables itself and writes no
    JSON)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_XDIST_")}
    env.pop("PYTEST_CURRENT_TEST", None)
    return {**env, **extra}
