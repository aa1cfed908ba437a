"""The serving front end (issue 16): CPU servers in the catalog and the design, the tokenize and
detokenize stages of a disaggregated pattern with their two CPU-side hops, their place in TTFT,
and the front end's price."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from fabric import catalog
from fabric.economics.costs import CostFile, Ledger, frontend_hourly_usd
from fabric.economics.derating import front_end_ttft
from fabric.economics.formulas import colocation_usd_per_hour, hourly_capex_usd, power_usd_per_hour
from fabric.economics.pools import stage_model
from fabric.errors import SpecError, WorkloadError
from fabric.specs import load_fabric_spec, parse_fabric_spec
from fabric.topology import build_fabric
from fabric.workloads import generate, load_workload, parse_workload
from fabric.workloads.frontend import STREAM_BYTES_PER_TOKEN, TOKEN_ID_BYTES

ROOT = Path(__file__).resolve().parents[2]
CPU = catalog.accelerator("EPYC-9354-frontend")
FRONT_HOSTS = ["h16", "h17", "h18", "h19"]
DECODE_LEADERS = {"h4", "h8", "h12"}     # first host of each TP4 decode instance


@pytest.fixture(scope="module")
def multi():
    return build_fabric(load_fabric_spec(ROOT / "topologies/multi-vendor.yaml"))


@pytest.fixture(scope="module")
def staged(multi):
    return generate(load_workload(ROOT / "traffic/hetero-stages.yaml"), multi)


def test_a_cpu_server_in_the_catalog_tokenizes_one_request_on_one_core():
    assert CPU.is_cpu and not catalog.accelerator("H100").is_cpu
    assert CPU.cores == 32 and CPU.nic_rate_bps == 100e9
    assert CPU.tokenize_s(1366) == pytest.approx(1366 * 32 / 12.7e6)
    assert CPU.detokenize_s(1) == pytest.approx(32 / 12.7e6)
    entry = {"kind": "cpu", "vendor": "x", "source": "https://example.org", "nic_count": 1, "nic_rate": "100G",
             "power_w": 500, "tokenize_tokens_per_s": 1e6, "detokenize_tokens_per_s": 1e6}
    with pytest.raises(WorkloadError, match=r"cpu-box.*cores"):
        catalog.parse_accelerator("cpu-box", entry)


def _design(groups: list[dict]) -> dict:
    data = yaml.safe_load((ROOT / "topologies/leaf-spine-ecmp.yaml").read_text())
    data["host_groups"] = groups
    return data


def test_a_front_end_is_a_cpu_server_and_a_cpu_server_is_a_front_end():
    with pytest.raises(SpecError, match=r"host_groups\[1\]\.accelerator.*'H100' for role frontend.*EPYC-9354"):
        parse_fabric_spec(_design([{"name": "a", "count": 12, "accelerator": "H100"},
                                   {"name": "fe", "count": 4, "accelerator": "H100", "role": "frontend"}]), "d.yaml")
    with pytest.raises(SpecError, match=r"host_groups\[1\]\.role.*'decode'.*runs no model"):
        parse_fabric_spec(_design([{"name": "a", "count": 12, "accelerator": "H100"},
                                   {"name": "fe", "count": 4, "accelerator": "EPYC-9354-frontend", "role": "decode"}]),
                          "d.yaml")
    spec = load_fabric_spec(ROOT / "topologies/multi-vendor.yaml")
    assert (spec.hosts, spec.accelerator_hosts, spec.frontend_hosts) == (20, 16, 4)


def test_each_request_is_tokenized_round_robin_and_its_ids_go_to_its_prefill_host(staged, multi):
    frame, req = staged.frame, pd.DataFrame(staged.frame.attrs["requests"])
    tokens = frame[frame["kind"] == "tokens"].set_index("request_id").sort_index()
    kv = frame[frame["kind"] == "kv"]
    assert list(tokens.index) == list(req["request_id"])                # one message per request (TP1 prefill)
    order = np.argsort(req["arrival_s"].to_numpy(), kind="stable")
    assert list(tokens["src"].to_numpy()[order]) == [FRONT_HOSTS[i % 4] for i in range(len(req))]
    assert (tokens["bytes"].to_numpy() == req["prompt_tokens"].to_numpy() * TOKEN_ID_BYTES).all()
    assert (tokens["dst"] == kv.groupby("request_id")["src"].first().sort_index()).all()
    # tokenizing on one core, then the ids at the front end's 100G (the slower NIC) before prefill starts
    assert np.allclose(req["tokenize_done_s"] - req["tokenize_start_s"], req["prompt_tokens"] * 32 / 12.7e6)
    assert np.allclose(tokens["t_start_s"], req["tokenize_done_s"])
    assert np.allclose(req["tokens_ready_s"] - req["tokenize_done_s"], req["prompt_tokens"] * TOKEN_ID_BYTES * 8 / 100e9)
    assert (req["tokenize_start_s"] >= req["arrival_s"]).all()
    assert (req["prefill_start_s"] >= req["tokens_ready_s"] - 1e-12).all()
    facts = frame.attrs["compute"]["kv"]["frontend"]
    assert facts["tokenize"] == {"group": "frontend", "accelerator": "EPYC-9354-frontend", "hosts": 4, "cores": 32,
                                 "tokens_per_s_per_host": 12.7e6}
    assert facts["token_id_bytes"] == TOKEN_ID_BYTES and facts["stream_bytes_per_token"] == STREAM_BYTES_PER_TOKEN


def test_decode_streams_one_message_per_step_and_front_end_carrying_each_requests_first_token(staged):
    frame, req = staged.frame, pd.DataFrame(staged.frame.attrs["requests"])
    stream = frame[frame["kind"] == "stream"]
    assert set(stream["src"]) <= DECODE_LEADERS and set(stream["dst"]) <= set(FRONT_HOSTS)
    assert (stream["bytes"] % STREAM_BYTES_PER_TOKEN == 0).all() and stream["group"].is_unique
    # a step of one instance sends at most one message to each front-end host
    step = stream["group"].str.rsplit(".", n=1).str[0]
    assert not pd.DataFrame({"step": step, "dst": stream["dst"]}).duplicated().any()
    # every token streamed within the window is one request's: bytes add up to the tokens streamed
    assert stream["bytes"].sum() / STREAM_BYTES_PER_TOKEN <= req["output_tokens"].sum()
    # each request's first token rides one stream message, to the host that tokenized it, after its prefill
    tokens = frame[frame["kind"] == "tokens"].set_index("request_id")
    by_group = stream.set_index("group")
    carried = req[req["first_token_group"] != ""]
    assert len(carried) >= len(req) - 2          # only the last requests' first tokens fall after the window
    for _, r in carried.iterrows():
        msg = by_group.loc[r["first_token_group"]]
        assert msg["dst"] == tokens.loc[r["request_id"], "src"]
        assert msg["t_start_s"] == pytest.approx(r["first_token_s"])
        assert r["first_token_s"] > r["prefill_done_s"]
        assert r["detokenize_s"] == pytest.approx(32 / 12.7e6)


def test_a_design_without_front_end_servers_leaves_the_stages_out_with_a_note():
    ecmp = build_fabric(load_fabric_spec(ROOT / "topologies/leaf-spine-ecmp.yaml"))
    gen = generate(load_workload(ROOT / "traffic/hetero-stages.yaml"), ecmp)
    assert set(gen.frame["kind"]) == {"kv"}
    assert any("tokenize not modelled: this design has no frontend (CPU server) hosts" in n for n in gen.notes)
    assert "frontend" not in gen.frame.attrs["compute"]["kv"]
    # a selector that names accelerator hosts for a front-end stage is an error naming its key
    data = yaml.safe_load((ROOT / "traffic/hetero-stages.yaml").read_text())
    data["patterns"][0]["tokenize"] = {"role": "decode"}
    with pytest.raises(WorkloadError, match=r"patterns\[0\]\.tokenize.*front-end CPU servers"):
        generate(parse_workload(data, "p.yaml"), build_fabric(load_fabric_spec(ROOT / "topologies/multi-vendor.yaml")))


def _msg(kind, group, request_id, start, ideal, measured):
    return {"kind": kind, "group": group, "request_id": request_id, "t_start_s": start,
            "ideal_done_s": start + ideal, "measured_done_s": start + measured, "recovered": False}


def test_ttft_adds_the_front_end_cpu_time_and_both_hops_ideal_and_measured():
    frame = pd.DataFrame([
        _msg("tokens", "p/t0", 0, 0.010, 1e-6, 5e-6),
        _msg("tokens", "p/t1", 1, 0.020, 2e-6, 2e-6),
        _msg("stream", "p/s0.3.h16", -1, 0.500, 1e-6, 9e-6),
        _msg("kv", "p/r0", 0, 0.300, 0.01, 0.02),
    ])
    timeline = pd.DataFrame({"arrival_s": [0.0, 0.015], "tokenize_done_s": [0.004, 0.018],
                             "detokenize_s": [3e-6, np.nan], "first_token_group": ["p/s0.3.h16", ""]},
                            index=["r0", "r1"])
    front = front_end_ttft(frame, timeline)
    assert front["cpu_s"].tolist() == pytest.approx([0.004 + 3e-6, 0.003])
    # r1's first token is not in the run: its stream hop counts 0 on both fabrics
    assert front["ideal_s"].tolist() == pytest.approx([0.004 + 3e-6 + 1e-6 + 1e-6, 0.003 + 2e-6])
    assert front["measured_s"].tolist() == pytest.approx([0.004 + 3e-6 + 5e-6 + 9e-6, 0.003 + 2e-6])
    no_front = timeline.assign(tokenize_done_s=np.nan, first_token_group="")
    assert front_end_ttft(frame, no_front) is None


def test_a_front_end_server_is_priced_bottom_up_from_the_catalog_as_a_whole_server():
    costs, led = CostFile(), Ledger()
    got = frontend_hourly_usd("EPYC-9354-frontend", costs, led, 1.3, 0.08)
    colo = led.items["facility.colocation_usd_per_kw_month"]["value"]
    expected = hourly_capex_usd(15000, 5.0, 0.10) + power_usd_per_hour(500, 1.3, 0.08) + colocation_usd_per_hour(500, colo)
    assert got["usd_per_hour"] == pytest.approx(expected)
    assert "server_share_usd" not in got    # the purchase price is the whole server's


def test_the_front_ends_busy_share_follows_from_the_offered_load(staged):
    compute = staged.frame.attrs["compute"]["kv"]
    run = {"workload": {"patterns": [{"type": "disaggregated", "name": "kv", "compute": compute}]}}
    stages = stage_model(run, None)
    rate, p, o = compute["offered_requests_per_s"], compute["prompt_tokens_mean"], compute["output_tokens_mean"]
    assert stages.frontend_busy_share() == pytest.approx(rate * (p + o) / (4 * 12.7e6))


def test_the_ledger_keeps_the_queue_before_prefill_of_a_run_without_a_front_end(tmp_path):
    """A run with requests.parquet but no front end: the explained input is the measured wait, not 0."""
    from fabric.economics import cpmt_for_run
    from fabric.sim.runner import SimOptions, run
    from fabric.workloads import generate_schedule, workload_facts
    from tests.sim.conftest import NS3_MISSING
    if NS3_MISSING:
        pytest.skip("the packet simulator needs the ns3 wheel")
    spec = load_fabric_spec(ROOT / "topologies/leaf-spine-ecmp.yaml")
    g = build_fabric(spec)
    workload = load_workload(ROOT / "traffic/hetero-stages.yaml")
    schedule = generate_schedule(workload, g)
    schedule = schedule[schedule["t_start_s"] < 0.6]
    out = tmp_path / "run"
    run(spec, g, schedule, out, SimOptions(name="q", scale=50.0, extra={"workload": workload_facts(workload, schedule)}))
    r = cpmt_for_run(out)
    inputs = {i["name"]: i for i in r["inputs"]}
    assert "serving.frontend_cpu_s" not in inputs and r["patterns"]["kv"]["frontend"] is None
    assert inputs["serving.queue_before_prefill_s"]["value"] == pytest.approx(r["patterns"]["kv"]["queue_before_prefill_mean_s"])
    assert "requests.parquet" in inputs["serving.queue_before_prefill_s"]["source"]
