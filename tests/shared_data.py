"""Where the real collections live for tests, and the one rule for when they are missing.

`../shared/data` beside the repository (override with REPBENCH_DATA). Missing data skips the test with
the reason, except under CI=true, where it fails: CI must run the real-data tests.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

DATA = Path(os.environ.get("REPBENCH_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


def require_data(*parts: str) -> Path:
    """DATA/<parts...>, or skip (fail under CI=true) when it does not exist."""
    path = DATA.joinpath(*parts)
    if not path.exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true but {path} is missing")
        pytest.skip(f"{path} not found (set REPBENCH_DATA)")
    return path
