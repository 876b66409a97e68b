"""Where repbench keeps what it derives once per machine (the tiny tokenizer, the dequantised SmolLM2)."""

from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path:
    from platformdirs import user_cache_dir

    return Path(os.environ.get("REPBENCH_CACHE", user_cache_dir("repbench")))
