"""An idle fabric is not charged: each shipped pattern alone at ≤ 1% load on each shipped design
completes as the contention-free ideal says (slowdown ≈ 1, η ≈ 1), and no message beats physics.

Each shipped profile is generated on the design, then thinned to a few of its groups, one after
another at ≤ 1% load (tests/idle.py). What is left to measure is the emulator itself: its per-packet latency and packet
granularity, which the completion model's ideal accounts for (fabric.analysis.completion).

What does not hold yet is marked where it is parametrized (KNOWN_GAPS), with the measured figure:
those cases still run and report (xfail), so a fix shows up as XPASS.
"""

from __future__ import annotations

import json

import pytest

from fabric import economics as E
from fabric.analysis.run_metrics import write_metrics
from fabric.emu.runner import RunOptions, run
from fabric.schedule import ETA_KINDS
from fabric.specs import load_fabric_spec
from fabric.topology import build_fabric, hosts
from fabric.workloads import generate_schedule, load_workload, workload_facts
from tests.idle import REPO, idle_schedule, shipped_profiles

DESIGNS = ["leaf-spine-ecmp", "leaf-spine-spray", "scheduled-fabric"]
PROFILES = shipped_profiles()
SLOWDOWN_TOLERANCE = 0.05
ETA_TOLERANCE = 0.02


SCHEDULED_TICK = ("the credit scheduler grants every 5 ms of wall time and a new VOQ starts with 1/4 of its port "
                  "until the next tick; the ideal has no credit loop (measured group slowdown 1.14-1.46, eta 0.92-0.97)")
KNOWN_GAPS = {
    ("leaf-spine-ecmp", "disagg-llama70b"): "ECMP hashes a request's 8 concurrent KV shards onto colliding uplinks "
                                            "(group slowdown up to 1.4 where spraying gives 1.01): the fabric's own "
                                            "contention inside one request, not an idle fabric's",
    ("leaf-spine-ecmp", "hetero-prefill-decode"): "the same ECMP collisions of a request's concurrent KV shards as "
                                                  "disagg-llama70b (message slowdown p50 1.16, group p50 1.24 at k = "
                                                  "1000; passed at the k of a faster calibration)",
    ("leaf-spine-ecmp", "hetero-stages"): "the same ECMP collisions: a request's 4 KV shards leave one leaf together "
                                          "over 4 uplinks as wide as a host's NIC, and Linux's hash puts two or three on "
                                          "one (message slowdown p50 2.5 at k = 2000 on a clean-clone run; spraying "
                                          "passes, and the simulator's own ECMP hash gives p50 1.09)",
    ("leaf-spine-spray", "disagg-llama70b"): "KV group slowdown 1.01-1.05 over runs, on the edge of the bound: at "
                                             "D = 1 a few-ms scheduling hiccup of this VM is a few % of a KV transfer",
    ("leaf-spine-ecmp", "moe-deepseek-v3-decode"): "power-law experts: the dispatch into the hottest rank overflows its "
                                                   "port buffer even alone (5.7% loss, group slowdown 8 from the RTO)",
    ("leaf-spine-spray", "moe-deepseek-v3-decode"): "power-law experts: the dispatch into the hottest rank overflows "
                                                    "its port buffer even alone (5.7% loss, group slowdown 8 from the RTO)",
    ("leaf-spine-ecmp", "permutation"): "three-packet messages finish 15-20% behind the ideal; not yet explained",
    ("leaf-spine-spray", "permutation"): "three-packet messages finish 15-20% behind the ideal; not yet explained",
    ("leaf-spine-ecmp", "tp-allreduce-405b"): "ring steps of one- and two-packet messages: group slowdown 0.99 but "
                                              "eta_tp 0.97 (bound 0.98); not yet explained",
    ("leaf-spine-spray", "tp-allreduce-405b"): "ring steps of one- and two-packet messages: group slowdown 0.99 but "
                                               "eta_tp 0.97 (bound 0.98); not yet explained",
}
# The all-to-all cases take a minute each (time dilation ~100); their gap is stated above.
SLOW_AND_KNOWN = {"moe-deepseek-v3-decode"}
# The scheduled fabric's gap is one (its credit loop) whatever the pattern: one case still runs
# (xfail; XPASS once it is fixed), the others are skipped to keep the suite's time.
SCHEDULED_SENTINEL = "incast"


def _cases():
    for design in DESIGNS:
        for profile in PROFILES:
            gap = SCHEDULED_TICK if design == "scheduled-fabric" else KNOWN_GAPS.get((design, profile))
            marks = []
            if gap and (profile in SLOW_AND_KNOWN or (gap is SCHEDULED_TICK and profile != SCHEDULED_SENTINEL)):
                marks.append(pytest.mark.skip(reason=f"known gap: {gap}"))
            elif gap:
                marks.append(pytest.mark.xfail(reason=f"known gap: {gap}", strict=False))
            yield pytest.param(design, profile, id=f"{design}-{profile}", marks=marks)


@pytest.mark.parametrize("design, profile", list(_cases()))
def test_each_pattern_alone_on_an_idle_fabric_is_not_charged(tmp_path, design, profile):
    spec = load_fabric_spec(REPO / "topologies" / f"{design}.yaml")
    g = build_fabric(spec)
    workload = load_workload(REPO / "traffic" / f"{profile}.yaml")
    nic = {h: g.nodes[h]["nic_rate_bps"] for h in hosts(g)}
    schedule = idle_schedule(generate_schedule(workload, g), nic)
    out = tmp_path / "run"
    run(spec, g, schedule, out, RunOptions(extra={"workload": workload_facts(workload, schedule)}))
    metrics = write_metrics(out)
    run_json = json.loads((out / "run.json").read_text())
    scale = f"k = {run_json['scale_k']:g}, D = {run_json['dilation']:g}"

    noise_p99_ms = metrics["noise_floor"]["owd_us"]["p99"] / 1e3
    causality = metrics["fidelity"]["detail"]["causality"]
    assert causality["violations"] == 0, causality
    for kind, c in metrics["classes"].items():
        # Collectives, requests and incasts complete as groups (the figure η is made of); streams of
        # independent messages (background, victim, permutation rounds) message by message.
        by_group = kind in ETA_KINDS
        stats = metrics["groups"][kind]["slowdown"] if by_group else c["slowdown"]
        p50 = stats["p50"]
        # The bound widens by what this machine's own noise floor (idle probe p99, measured before
        # the load) is worth against the class's typical ideal completion.
        completion_ms = (metrics["groups"][kind]["completion_ms"] if by_group else c["mct_ms"])["p50"]
        tolerance = SLOWDOWN_TOLERANCE + noise_p99_ms * p50 / completion_ms
        print(f"\n{design} {profile} {kind}: {'group' if by_group else 'message'} slowdown p50 {p50:.3f} "
              f"p99 {stats['p99']:.3f} (message p50 {c['slowdown']['p50']:.3f}; {scale}, {c['messages']['count']} "
              f"messages, one-packet share {metrics['fidelity']['detail']['resolution'].get(kind)})")
        assert abs(p50 - 1) <= tolerance, f"{kind}: slowdown p50 {p50:.3f} (bound ±{tolerance:.3f}) on an idle fabric ({scale})"
    eta = E.cpmt_for_run(out)["eta"]
    for pattern in ("kv", "moe", "tp", "tp_prefill"):
        if eta.get(pattern) is not None:
            print(f"{design} {profile}: eta_{pattern} = {eta[pattern]:.4f}")
            assert abs(eta[pattern] - 1) <= ETA_TOLERANCE, f"eta_{pattern} = {eta[pattern]:.4f} on an idle fabric"
