"""Simulator tests: no root needed; the ones that simulate need the ns3 wheel and skip without it.

The simulations are run once per session, two at a time (each is one single-threaded ns-3
process), and every test reads the run directories they left. The first of them builds the
compiled model into the cache if it is not there yet (~10 s, once).
"""

from __future__ import annotations

import importlib.util
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from fabric.sim.runner import SimOptions, run
from fabric.topology import build_fabric
from tests.sim import scenarios as S

NS3_MISSING = importlib.util.find_spec("ns3") is None
needs_ns3 = pytest.mark.skipif(NS3_MISSING, reason="the packet simulator needs the ns3 wheel (pip install ns3==3.44.post0)")


def _run(tmp: Path, name: str, design: dict, schedule, hash_seed: int | None = None, packet_cap: int = 2_000_000) -> dict:
    spec = S.load_design(tmp, design)
    g = build_fabric(spec)
    out = tmp / name
    seed = hash_seed if hash_seed is not None else spec.load_balancing.hash_seed
    run(spec, g, schedule, out, SimOptions(hash_seed=seed, name=name, tmax_s=0.005, packet_cap=packet_cap))
    return {"dir": out, "spec": spec, "g": g, "schedule": schedule}


@pytest.fixture(scope="session")
def sim_runs(tmp_path_factory) -> dict:
    """Every simulation of the tests: name -> {dir, spec, g, schedule}."""
    if NS3_MISSING:
        pytest.skip("the packet simulator needs the ns3 wheel (pip install ns3==3.44.post0)")
    tmp = tmp_path_factory.mktemp("sim")
    jobs = {
        "ecmp": (S.LEAF_SPINE, S.leaf_spine_schedule()),
        "scheduled": (S.SCHEDULED, S.scheduled_schedule()),
        "flows_same_seed": (S.LEAF_SPINE, S.flows_schedule()),
        # the spray test reads link counters only: its packets.parquet is a sample
        "spray": (S.SPRAY, S.spray_schedule(), None, S.SPRAY_PACKET_CAP),
        "flows_other_seed": (S.LEAF_SPINE, S.flows_schedule(), 8),
    }
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = {name: pool.submit(_run, tmp, name, *job) for name, job in jobs.items()}
        return {name: f.result() for name, f in futures.items()}
