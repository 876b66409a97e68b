"""The sweep's cache of encodings: content-addressed Representations files and their signal sidecars."""

from __future__ import annotations

import re
import warnings
from collections.abc import Sequence
from pathlib import Path

from repbench.encoders.identity import EncodingIdentity
from repbench.encoders.types import Representations, StoreError

__all__ = ["RepCache", "seal", "sealed", "signals_path"]


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text)


class RepCache:
    """Representations on disk, content-addressed: the file name carries a hash of the input rows and of
    every option that changes the output, and each file's sha256 sits in its sidecar, checked on load."""

    def __init__(self, root: Path):
        self.root = Path(root)

    def stem(self, identity: EncodingIdentity) -> Path:
        """Where one encoding is cached: readable names, then the identity's digest (rows included)."""
        o = identity.options
        return self.root / (f"{_safe(identity.backbone)}__{identity.encoder}__{o.side}__k{o.k}__len{o.max_length}"
                            f"__{identity.digest()[:16]}")

    def get(self, stem: Path, ids: Sequence[str]) -> Representations | None:
        """The cached item, or None when absent; a damaged or mismatching one is reported and not used."""
        # The .json is written last by Representations.save: its presence means a complete file pair.
        if not stem.with_suffix(".json").exists() or not stem.with_suffix(".safetensors").exists():
            return None
        try:
            reps = Representations.load(stem, verify=True)
        except StoreError as exc:
            warnings.warn(f"cached representations not used, recomputing: {exc}", stacklevel=2)
            return None
        if list(reps.ids) != list(ids):
            warnings.warn(f"cached representations {stem} hold other ids; recomputing", stacklevel=2)
            return None
        return reps


def _seal_path(path: Path) -> Path:
    return path.parent / (path.name + ".sha256")


def seal(path: Path) -> Path:
    """Record `path`'s sha256 next to it (`<name>.sha256`), so a later load can tell a damaged copy."""
    from repbench.encoders.digest import sha256_file
    from repbench.io import atomic_write_text

    return atomic_write_text(_seal_path(Path(path)), sha256_file(path) + "\n")


def sealed(path: Path) -> bool:
    """Whether `path` matches the sha256 `seal` recorded (False when either is missing: not vouched for)."""
    from repbench.encoders.digest import sha256_file

    path = Path(path)
    try:
        recorded = _seal_path(path).read_text(encoding="ascii").strip()
        return path.is_file() and sha256_file(path) == recorded
    except (OSError, UnicodeDecodeError):
        return False


def signals_path(stem: Path) -> Path:
    return stem.parent / (stem.name + ".signals.csv")
