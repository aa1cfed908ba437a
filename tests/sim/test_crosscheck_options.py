"""`fabric crosscheck` hands the simulator the emulator's run settings (no engine runs here)."""

from __future__ import annotations

import pandas as pd
import pytest

from fabric import crosscheck as X
from fabric.emu import runner as emulator
from fabric.sim import runner as simulator
from tests.rundirs import SMALL_DESIGN, write_run


class _Stop(Exception):
    pass


def test_simulator_gets_the_emulators_scale_payload_and_tmax(tmp_path, monkeypatch):
    from fabric.specs import parse_fabric_spec
    from fabric.topology import build_fabric

    spec = parse_fabric_spec(SMALL_DESIGN, "tests/rundirs.py")
    g = build_fabric(spec)

    def fake_emulate(spec, g, schedule, out_dir, options, progress=None):
        # The emulator records tmax in schedule time: 0.5 s of wall time at dilation 20.
        write_run(out_dir, {}, spec, g, scale_k=40.0, dilation=20.0, payload_bytes=1400, tmax_ns=25_000_000)

    seen = {}

    def fake_simulate(spec, g, schedule, out_dir, options, progress=None):
        seen["options"] = options
        raise _Stop

    monkeypatch.setattr(emulator, "run", fake_emulate)
    monkeypatch.setattr(simulator, "run", fake_simulate)
    schedule = pd.DataFrame({"msg_id": [0], "t_start_s": [0.0], "src": ["h0"], "dst": ["h2"], "bytes": [10_000],
                             "kind": ["kv"]})
    options = emulator.RunOptions(seed=3, hash_seed=5, tmax_s=0.5)
    with pytest.raises(_Stop):
        X.crosscheck(spec, g, schedule, tmp_path / "xc", options)
    o = seen["options"]
    assert (o.scale, o.payload_bytes, o.tmax_s, o.seed, o.hash_seed) == (40.0, 1400, 0.025, 3, 5)
