"""Fixtures shared by every test directory: generic paths only (emulation fixtures live with them)."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
TOPOLOGIES_DIR = REPO_ROOT / "topologies"


@pytest.fixture(scope="session")
def repo_root() -> Path:
    """The checkout's top directory (holds pyproject.toml, topologies/, traffic/)."""
    return REPO_ROOT


@pytest.fixture(scope="session")
def topology_files() -> list[Path]:
    """Every shipped fabric design, in name order."""
    files = sorted(TOPOLOGIES_DIR.glob("*.yaml"))
    assert files, f"no fabric designs found in {TOPOLOGIES_DIR}"
    return files
