"""Fixtures shared across test files: the tiny controlled pair (one seeded weight set, causal vs bidirectional)."""

from __future__ import annotations

import pytest

from repbench.backbones import load_backbone


@pytest.fixture(scope="module")
def ar():
    return load_backbone("tiny-ar")


@pytest.fixture(scope="module")
def diff():
    return load_backbone("tiny-diffusion")
