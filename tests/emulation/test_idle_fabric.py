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


PERMUTATION = ("the pattern's own contention, not the emulator's: each round the 4 hosts of every edge switch send at "
               "line rate through 4 uplinks as wide as a host's NIC (load 1.0), and per-packet spraying or hashing "
               "does not pace each uplink exactly, so queues of up to 6 packets build on the fabric links (seen on "
               "the scheduled design's NCF-to-NCP links); message slowdown 1.14-1.20 on all three designs")
TP_RING = ("ring steps of one- and five-packet messages from one host at once: the one-packet messages finish 5-13% "
           "before their round-robin ideal and the five-packet ones behind it, so group slowdown is 0.92-1.04 and "
           "eta_tp 0.97-1.03 over runs; the ideal's packet-by-packet turns over a host's messages are not the order "
           "the sender's batches take")
ECMP_KV = ("ECMP hashes a request's concurrent KV shards onto colliding uplinks (group slowdown up to 1.4 where "
           "spraying gives 1.01): the fabric's own contention inside one request, not an idle fabric's")
MOE_HOT_PORT = "power-law experts: the dispatch into the hottest rank overflows its port buffer even alone (5.7% loss, group slowdown 8 from the RTO)"
INCAST_OVERFLOW = ("the lossy fabric's incast, not the emulator's: 4 x 64 MB at once into one host's 8 MB tail-drop "
                   "port overflows it alone (emulated at k = 1000-2500: its 4-packet floor), and the go-back-N resends "
                   "cross that port again after the 4 ms RTO: group slowdown 1.38-1.57. The scheduled fabric's VOQs "
                   "carry the same incast at 0.99-1.06")
KNOWN_GAPS = {
    **{(design, profile): INCAST_OVERFLOW for design in ("leaf-spine-ecmp", "leaf-spine-spray")
       for profile in ("incast", "incast-victim")},
    ("leaf-spine-ecmp", "disagg-llama70b"): ECMP_KV + " (8 shards per request)",
    ("leaf-spine-ecmp", "hetero-stages"): ECMP_KV + " (4 shards leave one leaf over 4 uplinks as wide as a host's NIC; "
                                                    "message slowdown p50 1.3-2.5; the simulator's own ECMP hash "
                                                    "gives p50 1.09)",
    ("leaf-spine-ecmp", "moe-deepseek-v3-decode"): MOE_HOT_PORT,
    ("leaf-spine-spray", "moe-deepseek-v3-decode"): MOE_HOT_PORT,
    ("scheduled-fabric", "moe-deepseek-v3-decode"): ("the VOQs carry the hot rank's dispatch without loss, but at D = "
                                                     "40-47 the all-to-all's bursts run at the packet budget: "
                                                     "dispatch group slowdown p50 1.02-1.04, eta_moe 0.97-0.99 over "
                                                     "runs (bound 0.98)"),
    **{(design, "permutation"): PERMUTATION for design in ("leaf-spine-ecmp", "leaf-spine-spray", "scheduled-fabric")},
    **{(design, "tp-allreduce-405b"): TP_RING for design in ("leaf-spine-ecmp", "leaf-spine-spray", "scheduled-fabric")},
}
# The all-to-all cases take half a minute to a minute each (time dilation ~40-100), one
# permutation case shows its gap, and the incast case shows the incast-victim's: those are skipped
# to keep the suite's time, the rest still run and report (xfail; XPASS once fixed).
SKIPPED = {("leaf-spine-ecmp", "moe-deepseek-v3-decode"), ("leaf-spine-spray", "moe-deepseek-v3-decode"),
           ("scheduled-fabric", "moe-deepseek-v3-decode"), ("scheduled-fabric", "permutation"),
           ("leaf-spine-ecmp", "incast-victim"), ("leaf-spine-spray", "incast-victim")}


def _cases():
    for design in DESIGNS:
        for profile in PROFILES:
            gap = KNOWN_GAPS.get((design, profile))
            marks = []
            if gap and (design, profile) in SKIPPED:
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
