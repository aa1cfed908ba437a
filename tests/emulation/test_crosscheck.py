"""Cross-validation of the two engines: the same small design and schedule on the emulator and, at
the emulator's k, on the packet simulator; loss, MCT and one-way delay per class must agree within
the cross-check's tolerance (10%), widened only by what this machine's emulator measured as its own
timing error in the same run: its noise floor and its senders' lateness (the simulator has none)."""

from __future__ import annotations

import json

import pytest

from fabric.crosscheck import TOLERANCE, crosscheck
from fabric.emu.runner import RunOptions
from fabric.topology import build_fabric
from tests.emulation.conftest import messages, small_spec

pytest.importorskip("ns3", reason="the packet simulator needs the ns3 wheel (sudo make setup)")


def _incast_and_background():
    """Sprayed fabric (no hash to disagree on): a 3:1 incast of 40 MB messages into h0 every 40 ms
    (tens of packets each at the emulator's k, so loss is not a matter of one packet more or less),
    and a background message between two other hosts in between."""
    rows = []
    for r in range(10):
        t = 0.04 * r
        rows += [(t, src, "h0", 40e6, "incast") for src in ("h5", "h6", "h7")]
        rows.append((t + 0.02, "h1", "h8", 20e6, "background"))
    return messages(rows)


def test_emulator_and_simulator_agree_at_the_same_k(tmp_path):
    spec = small_spec(load_balancing={"mode": "spray"}, buffer_per_port="32MB")
    g = build_fabric(spec)
    result = crosscheck(spec, g, _incast_and_background(), tmp_path / "xc", RunOptions(seed=1))
    if result["emu_fidelity"] != "trusted":
        pytest.skip(f"the emulator run was {result['emu_fidelity']} on this machine: nothing to cross-check against")
    metrics = json.loads((tmp_path / "xc/emu/metrics.json").read_text())
    noise_us = metrics["noise_floor"]["owd_us"]["p99"]
    # The emulator's senders start messages late by up to this (measured in the same run): an
    # incast's queue, and so its delay tail, is built from when its senders actually sent.
    late_us = metrics["fidelity"]["signals"]["sender_lateness"]["measures"].get("sender_late_p95_us") or 0.0
    for row in result["rows"]:
        if row["rel_diff"] is None:
            continue
        # A time figure close to the emulator's own timing error (its noise floor, its senders'
        # lateness) cannot agree better than that error.
        scale_us = {"µs": 1.0, "ms": 1e3}.get(row["unit"])
        slack = 2 * max(noise_us, late_us) / (max(row["emu"], row["sim"]) * scale_us) if scale_us else 0.0
        assert row["rel_diff"] <= TOLERANCE + slack, row
