"""The disaggregated pattern stages prefill and decode per host group: on a design whose role mixes
accelerators (topologies/multi-vendor.yaml: decode = 8 MI300X + 4 Gaudi 3), each group forms its
own instances, timed by its own accelerator, and run.json's compute records one pool per
(stage, group). Single-group selections and `accelerator:` overrides behave as before."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from fabric import catalog
from fabric.errors import WorkloadError
from fabric.specs import load_fabric_spec
from fabric.topology import build_fabric
from fabric.workloads import generate, load_workload, parse_workload

ROOT = Path(__file__).resolve().parents[2]
LLAMA = catalog.model("Llama-3-70B")
B200, MI300X, GAUDI3 = (catalog.accelerator(n) for n in ("B200", "MI300X", "Gaudi3"))
MI_HOSTS = [f"h{i}" for i in range(4, 12)]
GAUDI_HOSTS = [f"h{i}" for i in range(12, 16)]


@pytest.fixture(scope="module")
def multi():
    return build_fabric(load_fabric_spec(ROOT / "topologies/multi-vendor.yaml"))


@pytest.fixture(scope="module")
def ecmp():
    return build_fabric(load_fabric_spec(ROOT / "topologies/leaf-spine-ecmp.yaml"))


def profile(prefill: dict, decode: dict, **pattern) -> dict:
    kv = {"type": "disaggregated", "name": "kv", "prefill": prefill, "decode": decode,
          "arrivals": {"process": "poisson", "rate_per_s": 10},
          "prompt_tokens": {"dist": "fixed", "tokens": 1000}, "output_tokens": {"dist": "fixed", "tokens": 256},
          "decode_batch": 32, **pattern}
    return {"name": "t", "model": "Llama-3-70B", "duration": "2s", "seed": 5, "patterns": [kv]}


def by_request(frame):
    """Request id -> the set of decode hosts its KV shards go to."""
    return {int(r): frozenset(rows["dst"]) for r, rows in frame.groupby("request_id")}


def test_decode_instances_are_per_group_with_their_own_step(multi):
    gen = generate(parse_workload(profile({"role": "prefill"}, {"role": "decode", "instance_hosts": 4})), multi)
    compute = gen.frame.attrs["compute"]["kv"]
    # fixed lengths: mean context = 1000 + 256 / 2 tokens, the same for every pool
    step_mi = MI300X.decode_step_s(LLAMA, 32, 1128.0, shards=4)
    step_ga = GAUDI3.decode_step_s(LLAMA, 32, 1128.0, shards=4)
    assert step_ga > step_mi          # Gaudi 3 reads HBM at 3.7 TB/s, MI300X at 5.3 TB/s
    prefill_rate = B200.prefill_tokens_per_s(LLAMA)
    assert compute["pools"] == [
        {"stage": "prefill", "group": "prefill-b200", "accelerator": "B200", "hosts": 4, "instances": 4,
         "instance_hosts": 1, "tokens_per_s_per_accelerator": prefill_rate},
        {"stage": "decode", "group": "decode-mi300x", "accelerator": "MI300X", "hosts": 8, "instances": 2,
         "instance_hosts": 4, "tokens_per_s_per_accelerator": 32 / (step_mi * 4), "step_s": step_mi, "batch": 32},
        {"stage": "decode", "group": "decode-gaudi3", "accelerator": "Gaudi3", "hosts": 4, "instances": 1,
         "instance_hosts": 4, "tokens_per_s_per_accelerator": 32 / (step_ga * 4), "step_s": step_ga, "batch": 32},
    ]
    assert compute["prefill_tokens_per_s"] == prefill_rate and compute["prefill_tp"] == 1
    assert compute["decode_step_compute_s"] == pytest.approx((2 * step_mi + step_ga) / 3, rel=1e-12)
    assert compute["accelerator_prefill"] == "B200" and compute["accelerator_decode"] == "MI300X+Gaudi3"
    assert "4 x MI300X or 4 x Gaudi3 per decode instance" in compute["source"]
    assert json.loads(json.dumps(compute)) == compute
    # every request's 4 shards go to exactly one instance, which never mixes groups
    instances = {frozenset(MI_HOSTS[:4]), frozenset(MI_HOSTS[4:]), frozenset(GAUDI_HOSTS)}
    assert set(by_request(gen.frame).values()) == instances
    note = next(n for n in gen.notes if n.startswith("kv: prefill"))
    assert (f"decode 2 x 4 MI300X step {step_mi * 1e3:.1f} ms, 1 x 4 Gaudi3 step {step_ga * 1e3:.1f} ms "
            f"at batch 32") in note


def test_least_loaded_placement_sees_each_instance_end_at_its_own_step(multi, tmp_path):
    # Three requests fill the three decode instances (MI300X, MI300X, Gaudi 3); 100 output tokens
    # take ~1.0 s on MI300X and ~1.4 s on Gaudi 3. Three more arrive at 1.1 s: the MI300X
    # instances are free, the Gaudi 3 one still busy, so they go to MI300X, MI300X, MI300X.
    # (Timed with the MI300X step, the Gaudi 3 instance would be free and take the third.)
    (tmp_path / "trace.csv").write_text("prompt_tokens,output_tokens,arrival_s\n"
                                        + "".join(f"100,100,{t}\n" for t in (0.0, 0.001, 0.002, 1.1, 1.101, 1.102)))
    data = profile({"role": "prefill"}, {"role": "decode", "instance_hosts": 4}, trace="trace.csv",
                   arrivals={"process": "trace"}, prompt_tokens={"dist": "trace"}, output_tokens={"dist": "trace"})
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(data))
    gen = generate(load_workload(path), multi)
    placed = by_request(gen.frame)
    mi0, mi1, ga = frozenset(MI_HOSTS[:4]), frozenset(MI_HOSTS[4:]), frozenset(GAUDI_HOSTS)
    assert [placed[r] for r in sorted(placed)] == [mi0, mi1, ga, mi0, mi1, mi0]
    step_mi = MI300X.decode_step_s(LLAMA, 32, 150.0, shards=4)
    step_ga = GAUDI3.decode_step_s(LLAMA, 32, 150.0, shards=4)
    assert 100 * step_mi < 1.08 < 1.1 < 100 * step_ga
    assert [p["step_s"] for p in gen.frame.attrs["compute"]["kv"]["pools"][1:]] == [step_mi, step_ga]


def test_prefill_time_is_prompt_over_its_instance_rate(multi):
    # prefill over both decode-role groups (MI300X: 1 host holds the weights; Gaudi 3: 2 hosts)
    data = profile({"role": "decode"}, {"role": "prefill"}, prompt_tokens={"dist": "lognormal", "median": 2000,
                                                                         "sigma": 0.6, "min": 64, "max": 16000},
                   arrivals={"process": "poisson", "rate_per_s": 40})
    gen = generate(parse_workload(data), multi)
    rate = {h: MI300X.prefill_tokens_per_s(LLAMA) for h in MI_HOSTS}
    rate |= {h: 2 * GAUDI3.prefill_tokens_per_s(LLAMA) for h in GAUDI_HOSTS}
    src = gen.frame.groupby("request_id")["src"].first()
    req = gen.frame.attrs["requests"]
    for rid, start, done, prompt in zip(req["request_id"], req["prefill_start_s"], req["prefill_done_s"],
                                        req["prompt_tokens"]):
        assert done - start == pytest.approx(prompt / rate[src[rid]], rel=1e-12, abs=1e-15)
    assert set(src) & set(MI_HOSTS) and set(src) & set(GAUDI_HOSTS)
    pools = gen.frame.attrs["compute"]["kv"]["pools"]
    assert [(p["group"], p["instances"], p["instance_hosts"]) for p in pools[:2]] == [
        ("decode-mi300x", 8, 1), ("decode-gaudi3", 2, 2)]
    # several prefill pools: the capacity-weighted mean instance rate
    rates = [MI300X.prefill_tokens_per_s(LLAMA)] * 8 + [2 * GAUDI3.prefill_tokens_per_s(LLAMA)] * 2
    compute = gen.frame.attrs["compute"]["kv"]
    assert compute["prefill_tokens_per_s"] == pytest.approx(sum(r * r for r in rates) / sum(rates), rel=1e-12)
    assert compute["prefill_tp"] == 1 and compute["accelerator_prefill"] == "MI300X+Gaudi3"
    # KV shards: max(source, destination instance size) per request; B200 decode instances are of 1
    # (one B200 holds the weights): 1 shard from an MI300X prefill instance, 2 from a Gaudi 3 one
    shards = gen.frame.groupby("request_id").size()
    assert (shards[src.isin(MI_HOSTS)] == 1).all() and (shards[src.isin(GAUDI_HOSTS)] == 2).all()
    assert (gen.frame.groupby("request_id")["dst"].nunique() == 1).all()


def test_leftover_hosts_of_each_group_are_idle_with_a_note(multi):
    gen = generate(parse_workload(profile({"role": "prefill"}, {"role": "decode", "instance_hosts": 3})), multi)
    assert "decode group decode-mi300x: 2 of 8 hosts left idle (instances of 3)" in gen.notes
    assert "decode group decode-gaudi3: 1 of 4 hosts left idle (instances of 3)" in gen.notes
    assert set(gen.frame["dst"]) <= {"h4", "h5", "h6", "h7", "h8", "h9", "h12", "h13", "h14"}
    gen = generate(parse_workload(profile({"role": "prefill"}, {"role": "decode", "instance_hosts": 8})), multi)
    assert any(n.startswith("decode group decode-gaudi3: all 4 hosts left idle") for n in gen.notes)
    assert [p["instances"] for p in gen.frame.attrs["compute"]["kv"]["pools"][1:]] == [1, 0]
    assert set(gen.frame["dst"]) == set(MI_HOSTS)
    with pytest.raises(WorkloadError, match=r"patterns\[0\]\.decode\.instance_hosts: got 16; no selected host group"):
        generate(parse_workload(profile({"role": "prefill"}, {"role": "decode", "instance_hosts": 16})), multi)


def test_an_accelerator_override_times_all_groups_as_one_pool(multi):
    gen = generate(load_workload(ROOT / "traffic/hetero-prefill-decode.yaml"), multi)
    pools = gen.frame.attrs["compute"]["kv"]["pools"]
    assert [(p["stage"], p["group"], p["accelerator"], p["hosts"], p["instances"], p["instance_hosts"])
            for p in pools] == [("prefill", "prefill-b200", "B200", 4, 2, 2),
                                ("decode", "decode-mi300x+decode-gaudi3", "MI300X", 12, 3, 4)]
    # the third TP4 instance (h12..h15) is Gaudi 3 hardware timed as MI300X, as the override says
    assert set(gen.frame["dst"]) == set(MI_HOSTS + GAUDI_HOSTS)


def test_mla_decodes_over_single_hosts_of_each_group(multi):
    data = {**profile({"role": "prefill"}, {"role": "decode"}), "model": "DeepSeek-V3"}
    gen = generate(parse_workload(data), multi)
    assert (gen.frame.groupby("request_id").size() == 1).all()
    ds = catalog.model("DeepSeek-V3")
    step_mi = MI300X.decode_step_s(ds, 32, 1128.0, shards=8)   # 671 GB: 8 MI300X hold the weights
    step_ga = GAUDI3.decode_step_s(ds, 32, 1128.0, shards=4)   # capped at the group's 4 Gaudi 3
    pools = gen.frame.attrs["compute"]["kv"]["pools"][1:]
    assert [(p["instances"], p["instance_hosts"], p["step_s"], p["tokens_per_s_per_accelerator"]) for p in pools] == [
        (8, 1, step_mi, 32 / step_mi), (4, 1, step_ga, 32 / step_ga)]
    assert gen.frame.attrs["compute"]["kv"]["decode_step_compute_s"] == pytest.approx((8 * step_mi + 4 * step_ga) / 12)
    assert any("decode group decode-gaudi3: DeepSeek-V3 weights (671 GB) do not fit 4 Gaudi3" in n for n in gen.notes)


def test_hetero_stages_profile_on_multi_vendor(multi):
    gen = generate(load_workload(ROOT / "traffic/hetero-stages.yaml"), multi)
    compute = gen.frame.attrs["compute"]["kv"]
    pools = compute["pools"]
    assert [(p["stage"], p["group"], p["accelerator"], p["hosts"], p["instances"], p["instance_hosts"])
            for p in pools] == [("prefill", "prefill-b200", "B200", 4, 4, 1),
                                ("decode", "decode-mi300x", "MI300X", 8, 2, 4),
                                ("decode", "decode-gaudi3", "Gaudi3", 4, 1, 4)]
    assert pools[0]["tokens_per_s_per_accelerator"] == B200.prefill_tokens_per_s(LLAMA)
    for p in pools[1:]:
        assert p["batch"] == 32 and p["tokens_per_s_per_accelerator"] == 32 / (p["step_s"] * 4)
    # both decode steps at one mean context, from each group's own accelerator
    mi, ga = pools[1]["step_s"], pools[2]["step_s"]
    context = (mi * 4 * MI300X.hbm_bandwidth_bytes_per_s * MI300X.hbm_efficiency - LLAMA.weight_bytes) / (
        32 * LLAMA.kv_bytes_per_token)
    assert ga == pytest.approx(GAUDI3.decode_step_s(LLAMA, 32, context, shards=4), rel=1e-9)
    # KV: 4 shards per request from one B200 to one TP4 decode instance
    kv = gen.frame[gen.frame["kind"] == "kv"]
    assert (kv.groupby("request_id").size() == 4).all()
    assert (kv.groupby("request_id")["src"].nunique() == 1).all()
    # prefill and decode load sensible for the profile's comment: neither idle nor overloaded
    req = gen.frame.attrs["requests"]
    offered = np.sum(req["prompt_tokens"]) / 3.0
    assert 0.5 < offered / (4 * B200.prefill_tokens_per_s(LLAMA)) < 0.9


def test_hetero_stages_runs_as_one_pool_per_stage_on_a_single_vendor_design(ecmp, tmp_path):
    gen = generate(load_workload(ROOT / "traffic/hetero-stages.yaml"), ecmp)
    pools = gen.frame.attrs["compute"]["kv"]["pools"]
    assert [(p["group"], p["accelerator"], p["instances"], p["instance_hosts"]) for p in pools] == [
        ("prefill", "H100", 2, 4), ("decode", "H100", 2, 4)]
    # a design without those roles refuses it, naming the key
    spec = yaml.safe_load((ROOT / "topologies/leaf-spine-ecmp.yaml").read_text())
    spec["host_groups"] = [{"name": "all", "count": 16, "accelerator": "H100", "role": "any"}]
    (tmp_path / "anyrole.yaml").write_text(yaml.safe_dump(spec))
    graph = build_fabric(load_fabric_spec(tmp_path / "anyrole.yaml"))
    with pytest.raises(WorkloadError, match=r"hetero-stages.yaml: patterns\[0\]\.prefill\.role: got 'prefill'"):
        generate(load_workload(ROOT / "traffic/hetero-stages.yaml"), graph)


# Rows (and compute records, less `pools`) of single-group and override schedules, computed with the
# generator BEFORE stages were placed per group: they must not change.
ROW_COLUMNS = ["msg_id", "t_start_s", "src", "dst", "bytes", "kind", "group", "request_id", "step"]
CUSTOM = {"name": "t", "model": "Llama-3-70B", "duration": "3s", "seed": 3, "patterns": [{
    "type": "disaggregated", "name": "kv", "prefill": {"role": "prefill", "instance_hosts": 2},
    "decode": {"role": "decode", "instance_hosts": 1}, "arrivals": {"process": "poisson", "rate_per_s": 8},
    "prompt_tokens": {"dist": "lognormal", "median": 1000, "sigma": 0.8, "min": 64, "max": 8000},
    "placement": "random"}]}
BEFORE = {
    ("disagg-llama70b", "leaf-spine-ecmp"): (
        "14152086cba906597b27e7f0c25b779a717a1a9ce594dff30868305791789fe0", 240,
        {"prefill_tokens_per_s": 11206.798866855524, "prefill_tp": 4, "decode_step_compute_s": 0.010516103641791045,
         "accelerator_prefill": "H100", "accelerator_decode": "H100",
         "source": "catalog: 4 x H100 per prefill instance, 8 x H100 per decode instance at batch 64 (Llama-3-70B)"}),
    ("hetero-prefill-decode", "multi-vendor"): (
        "b52253276ca817176d01ee25e9254d61d57135f90bed6b6f2620c6caace62920", 84,
        {"prefill_tokens_per_s": 12747.87535410765, "prefill_tp": 2, "decode_step_compute_s": 0.014191457270799642,
         "accelerator_prefill": "B200", "accelerator_decode": "MI300X",
         "source": "catalog: 2 x B200 per prefill instance, 4 x MI300X per decode instance at batch 64 (Llama-3-70B)"}),
    ("mixed-inference", "leaf-spine-ecmp"): (
        "564c37e4291e2b135d28588532dc7cfa1588286101e4255d3dc18b9fa10079e9", 10940,
        {"prefill_tokens_per_s": 42767.56756756757, "prefill_tp": 8, "decode_step_compute_s": 0.03636134157100213,
         "accelerator_prefill": "H100", "accelerator_decode": "H100",
         "source": "catalog: 8 x H100 per prefill instance, 8 x H100 per decode instance at batch 64 (DeepSeek-V3)"}),
    ("custom", "leaf-spine-ecmp"): (
        "23800f339ac9d69ac1fc91195d701bc0d42e0f548bbf73aa11b86993dee69776", 50,
        {"prefill_tokens_per_s": 5603.399433427762, "prefill_tp": 2, "decode_step_compute_s": 0.07239534919181868,
         "accelerator_prefill": "H100", "accelerator_decode": "H100",
         "source": "catalog: 2 x H100 per prefill instance, 1 x H100 per decode instance at batch 64 (Llama-3-70B)"}),
}


@pytest.mark.parametrize("case", list(BEFORE), ids=lambda c: f"{c[0]}@{c[1]}")
def test_single_group_and_override_schedules_are_unchanged(case):
    name, design = case
    graph = build_fabric(load_fabric_spec(ROOT / "topologies" / f"{design}.yaml"))
    wl = parse_workload(CUSTOM) if name == "custom" else load_workload(ROOT / "traffic" / f"{name}.yaml")
    frame = generate(wl, graph).frame
    digest, rows, compute = BEFORE[case]
    assert len(frame) == rows
    assert hashlib.sha256(frame[ROW_COLUMNS].to_csv(index=False).encode()).hexdigest() == digest
    recorded = dict(frame.attrs["compute"]["kv"])
    pools = recorded.pop("pools")
    for offered in ("requests_offered", "offered_requests_per_s", "prompt_tokens_mean", "output_tokens_mean"):
        recorded.pop(offered)      # the offered load, recorded since (tests/unit/test_stage_pools.py)
    assert recorded == compute
    assert [p["stage"] for p in pools] == ["prefill", "decode"]
    assert pools[0]["instance_hosts"] == compute["prefill_tp"]
