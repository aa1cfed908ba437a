"""Emulation tests: need root and Mininet; each builds and removes its own namespaces.

They skip with a one-line reason where root or Mininet is missing, and never leave anything
behind: the runner tears down on success, error and interrupt, and a fixture checks it.
"""

from __future__ import annotations

import os
import shutil

import pandas as pd
import pytest

from fabric.emu.runner import RunOptions, run
from fabric.specs import parse_fabric_spec
from fabric.topology import build_fabric


def _skip_reason() -> str | None:
    if os.geteuid() != 0:
        return "emulation tests need root (network namespaces)"
    try:
        import mininet.net  # noqa: F401
    except ImportError:
        return "emulation tests need Mininet (sudo make setup)"
    if shutil.which("mnexec") is None:
        return "emulation tests need mnexec (sudo make setup)"
    return None


SKIP_REASON = _skip_reason()
pytestmark = pytest.mark.emulation


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "tests/emulation" in str(item.fspath).replace(os.sep, "/"):
            item.add_marker(pytest.mark.emulation)
            if SKIP_REASON:
                item.add_marker(pytest.mark.skip(reason=SKIP_REASON))


def small_spec(**overrides):
    """A small leaf-spine design for tests: 2 leaves, 2 spines, 5 hosts per leaf, 100G."""
    data = {"kind": "leaf-spine", "name": "test-fabric", "leaves": 2, "spines": 2, "hosts_per_leaf": 5,
            "host_link_rate": "100G", "fabric_link_rate": "100G", "buffer_per_port": "64MB",
            "load_balancing": {"mode": "ecmp", "hash_seed": 7}}
    data.update(overrides)
    return parse_fabric_spec(data, "<test-spec>")


def messages(rows) -> pd.DataFrame:
    """Schedule rows from (t_start_s, src, dst, bytes, kind) tuples."""
    return pd.DataFrame([dict(msg_id=i, t_start_s=t, src=s, dst=d, bytes=int(b), kind=k, group=f"g{i}")
                         for i, (t, s, d, b, k) in enumerate(rows)])


@pytest.fixture
def emulate(tmp_path):
    """Run a schedule on a spec; return (run_dir, run.json, packets, messages, links)."""
    import json

    counter = [0]

    def _emulate(spec, schedule, **options):
        counter[0] += 1
        out = tmp_path / f"run{counter[0]}"
        g = build_fabric(spec)
        run(spec, g, schedule, out, RunOptions(**options))
        run_json = json.loads((out / "run.json").read_text())
        return (out, run_json, pd.read_parquet(out / "packets.parquet"), pd.read_parquet(out / "messages.parquet"),
                pd.read_parquet(out / "links.parquet"))

    return _emulate


def assert_fidelity_holds(fidelity: dict, allowed_warnings: tuple[str, ...] = ()) -> None:
    """A normal run keeps the emulator's invariants: nothing fails, and the only warnings are this
    machine's own load (the emulator's machinery signals, which a slower or busier VM of this kind
    can raise at the chosen scale: that is what they are for) or ``allowed_warnings``."""
    from fabric.analysis.fidelity import ENGINE_ONLY
    assert not fidelity["failing"], fidelity["reasons"]
    unexpected = set(fidelity["warning"]) - set(ENGINE_ONLY["emu"]) - set(allowed_warnings)
    assert not unexpected, fidelity["reasons"]
