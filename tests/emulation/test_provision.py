"""The installer is idempotent: run again on a provisioned machine it installs nothing, quickly."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_second_provision_run_is_quick_and_changes_nothing():
    # `make test` has just provisioned this checkout; a second run must find everything in place.
    started = time.monotonic()
    proc = subprocess.run(["bash", str(REPO / "vagrant" / "provision.sh"), str(REPO)], capture_output=True,
                          text=True, timeout=300)
    elapsed = time.monotonic() - started
    assert proc.returncode == 0, proc.stderr
    assert "OS packages present" in proc.stdout
    assert "fabric already installed" in proc.stdout
    assert "installing" not in proc.stdout
    assert elapsed < 30, f"second run took {elapsed:.0f} s"
