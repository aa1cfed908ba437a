"""Report rendering from synthetic run directories (no root): every design, every table, plots
embedded as images, the same tables in Markdown, summary.json keys, n/a with reasons, fidelity
warnings, break-even and significance across repeats."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fabric.analysis.run_metrics import write_metrics
from fabric.probe import WIRE_OVERHEAD_BYTES
from fabric.specs import load_fabric_spec
from fabric.topology import build_fabric, hosts
from tests.rundirs import write_run

REPO = Path(__file__).resolve().parents[2]
PROFILE = REPO / "tests" / "emulation" / "profiles" / "small-mixed.yaml"
ECMP = REPO / "topologies" / "leaf-spine-ecmp.yaml"
SPRAY = REPO / "topologies" / "leaf-spine-spray.yaml"
SCHED = REPO / "topologies" / "scheduled-fabric.yaml"
K = 20.0
PAYLOAD = 4096


def synthetic_run(spec, g, schedule: pd.DataFrame, out: Path, *, k: float = K, seed: int = 3, hash_seed: int = 7,
                  queue_us: float = 20.0, loss_every: int = 0, rng_seed: int = 0, host_side_drops: int = 0,
                  traffic: Path = PROFILE, name: str | None = None) -> Path:
    """Write a run directory shaped like fabric.emu.runner's, with made-up but consistent records.

    Each message's packets leave back to back at the host's emulated line rate; one-way delay is
    5 µs + an exponential queueing delay with mean ``queue_us``; every ``loss_every``-th packet is
    lost (0: none). Fabric links get counters at 0.1 s samples.
    """
    rng = np.random.default_rng(rng_seed)
    out = Path(out)
    sched = schedule.sort_values("msg_id").reset_index(drop=True)
    t0 = 1_700_000_000_000_000_000
    host_rate = spec.host_link_rate_bps / k
    emulated = np.maximum(np.round(sched["bytes"].to_numpy() / k), 64).astype(np.int64)
    npk = np.ceil(emulated / PAYLOAD).astype(np.int64)
    msg = np.repeat(np.arange(len(sched)), npk)
    seq = np.arange(npk.sum()) - np.repeat(np.cumsum(npk) - npk, npk)
    last = emulated - (npk - 1) * PAYLOAD
    size = np.where(seq == np.repeat(npk - 1, npk), np.repeat(last, npk), PAYLOAD)
    t_sched = t0 + np.round(sched["t_start_s"].to_numpy() * 1e9).astype(np.int64)
    wire_ns = ((size + WIRE_OVERHEAD_BYTES) * 8e9 / host_rate).astype(np.int64)  # one hop's serialization
    tx = np.repeat(t_sched, npk) + (seq * (PAYLOAD + WIRE_OVERHEAD_BYTES) * 8e9 / host_rate).astype(np.int64) + 2000
    owd = (5_000 + rng.exponential(queue_us * 1e3, size=tx.size)).astype(np.int64)
    rx = tx + wire_ns + owd
    if loss_every:
        lost = (np.arange(tx.size) % loss_every) == loss_every - 1
        rx = np.where(lost, -1, rx)
    copies = (rx >= 0).astype(np.int16)
    packets = pd.DataFrame({"msg_id": sched["msg_id"].to_numpy()[msg], "seq": seq, "src": sched["src"].to_numpy()[msg],
                            "dst": sched["dst"].to_numpy()[msg], "bytes": size, "tx_ns": tx, "rx_ns": rx,
                            "copies": copies, "path": rng.integers(0, spec.cores, size=tx.size), "ser_ns": wire_ns})
    hs = hosts(g)
    noise = pd.DataFrame({"msg_id": np.arange(20), "seq": 0, "src": hs[0], "dst": hs[-1], "bytes": 64,
                          "tx_ns": t0 - 500_000_000 + np.arange(20) * 1_000_000,
                          "rx_ns": t0 - 500_000_000 + np.arange(20) * 1_000_000 + 6_000, "copies": 1, "path": 0})
    rxm = np.where(rx >= 0, rx, -1)
    starts = np.cumsum(npk) - npk
    messages = pd.DataFrame({
        "msg_id": sched["msg_id"], "src": sched["src"], "dst": sched["dst"], "kind": sched["kind"],
        "group": sched["group"], "request_id": sched["request_id"], "step": sched["step"], "bytes": sched["bytes"],
        "bytes_emulated": emulated, "packets": npk, "packets_received": np.add.reduceat(copies.astype(np.int64), starts),
        "t_sched_ns": t_sched, "t_tx_first_ns": tx[starts], "t_tx_last_ns": tx[starts + npk - 1],
        "t_rx_last_ns": np.maximum.reduceat(rxm, starts)})
    rows = []
    times = t0 + np.arange(0, 8) * 100_000_000
    for u, v, d in g.edges(data=True):
        for node, peer in ((u, v), (v, u)):
            rate = d["rate_bps"] / k
            util = rng.uniform(0.05, 0.6, size=len(times))
            cum = np.cumsum(util * rate * 0.1 / 8).astype(np.int64)
            for t, c in zip(times, cum):
                rows.append(dict(t_ns=t, link_id=d["link_id"], node=node, peer=peer, kind=d["kind"], queue="port",
                                 rate_bps=int(rate), tx_bytes=int(c), tx_packets=int(c // PAYLOAD), drops=0,
                                 backlog_bytes=0, backlog_packets=0))
    cpu = pd.DataFrame({"t_ns": times, "some_avg10": 2.0, "some_total_us": np.arange(8) * 2000, "full_total_us": 0})
    write_run(out, {"packets": packets, "noise": noise, "messages": messages, "links": pd.DataFrame(rows),
                    "cpu": cpu, "schedule": schedule}, spec=spec, g=g,
              name=name or out.name, workload={"path": str(traffic), "messages": int(len(schedule)),
                                               "bytes": int(schedule["bytes"].sum())},
              seed=seed, hash_seed=hash_seed, scale_k=float(k), payload_bytes=PAYLOAD, t0_ns=t0, wall_time_s=4.2,
              scale={"k": k, "budget_pps": 50000, "peak_offered_bps": 4.8e12, "mean_offered_bps": 1e12,
                     "peak_pps_emulated": 29296.9, "reason": "synthetic", "note": "synthetic test run"},
              noise_probe_payload_bytes=64, host_side_drops=host_side_drops, sender_refused=0,
              receiver_foreign_packets=0, tx_timestamps_missing=0, commands={}, captures=[], scheduler=None, tools={})
    write_metrics(out)
    return out


def design_run(path: Path, out: Path, **kw) -> Path:
    from fabric.workloads import generate_schedule, load_workload
    spec = load_fabric_spec(path)
    g = build_fabric(spec)
    schedule = generate_schedule(load_workload(PROFILE), g, seed=3)
    return synthetic_run(spec, g, schedule, out, **kw)


@pytest.fixture(scope="module")
def two_designs(tmp_path_factory):
    base = tmp_path_factory.mktemp("runs")
    a = design_run(ECMP, base / "leaf-spine-ecmp-r1", queue_us=20)
    b = design_run(SCHED, base / "scheduled-fabric-r1", queue_us=200, loss_every=500, host_side_drops=50_000,
                   rng_seed=1)
    return [a, b]


@pytest.fixture(scope="module")
def built(two_designs, tmp_path_factory):
    from fabric.commands.report import summary_from_run_dirs
    from fabric.report.render import write_report
    out = tmp_path_factory.mktemp("report")
    summary = summary_from_run_dirs(two_designs, None, out)
    paths = write_report(summary, out / "report.html")
    return summary, paths


TABLE_TITLES = ["Verdict per design", "Tails per traffic class", "Tokens and cost", "Designs", "Cost-model inputs",
                "Runs", "Fidelity per run"]
SECTIONS = ["Break-even", "One-way delay CCDF per class", "Message completion slowdown CDF",
            "Fabric link utilization over time", "η and CPMT per design", "Known limits of kernel emulation",
            "Reproduce", "Scale factor", "Workload"]


def test_html_holds_every_design_table_and_embedded_plot(built):
    summary, paths = built
    html = paths["html"].read_text()
    for name in ("leaf-spine-ecmp", "scheduled-fabric"):
        assert name in html
    for title in TABLE_TITLES + SECTIONS:
        assert title in html, title
    images = re.findall(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)
    assert len(images) == 6, "expected 6 embedded plots (OWD CCDF, slowdown CDF, heatmap, η/CPMT, tornado, break-even)"
    import base64
    for img in images:
        assert base64.b64decode(img)[:8] == b"\x89PNG\r\n\x1a\n"
        assert len(img) > 10_000
    # self-contained: no external resources
    assert not re.search(r'(src|href)="(https?:)?//', html)
    assert "<script" not in html and "<link" not in html
    # the verdict table comes first, before any plot
    assert html.index("Verdict per design") < html.index("<img")
    assert "k = 20" in html


def test_markdown_holds_the_same_tables(built):
    from fabric.report import tables as T
    summary, paths = built
    md = paths["md"].read_text()
    for t in T.all_tables(summary).values():
        assert T.markdown_table(t) in md, t.title
        assert f"### {t.title}" in md
    for line in T.break_even_lines(summary):
        assert line in md
    assert "data:image/png" not in md


def test_verdict_table_has_a_filled_row_per_design(built):
    from fabric.report import tables as T
    summary, _ = built
    t = T.verdict_table(summary)
    assert [r[0] for r in t.rows] == ["leaf-spine-ecmp", "scheduled-fabric"]
    for row in t.rows:
        cells = dict(zip(t.headers, row))
        assert re.match(r"\$\d+\.\d{4} \[\$\d+\.\d{4}–\$\d+\.\d{4}\]$", cells["CPMT total $/Mtok"]), cells
        assert re.match(r"\d\.\d{4} \[\d\.\d{4}–\d\.\d{4}\]", cells["η combined (set by)"]), cells
        assert cells["η TP"].startswith("n/a [")   # no all-reduce in the profile: n/a with a reason
    assert any("no tensor-parallel all-reduce traffic" in n for n in t.notes)
    classes = T.class_table(summary)
    kinds = {r[0] for r in classes.rows}
    assert kinds == {"kv", "a2a_dispatch", "a2a_combine", "background"}
    for row in classes.rows:
        assert not any(c.startswith("n/a") for c in row[2:]), row


def test_untrusted_verdict_is_said_clearly(built):
    summary, paths = built
    sched = next(d for d in summary["designs"] if d["name"] == "scheduled-fabric")
    assert sched["fidelity"]["verdict"] == "untrusted"    # host-side loss past its fail threshold
    assert sched["fidelity"]["trusted"] is False
    ecmp = next(d for d in summary["designs"] if d["name"] == "leaf-spine-ecmp")
    assert ecmp["fidelity"]["verdict"] == "trusted", ecmp["fidelity"]
    html = paths["html"].read_text()
    assert "Not every result is trusted" in html and "UNTRUSTED" in html
    assert [t["design"] for t in summary["comparison"]["not_trusted"]] == ["scheduled-fabric"]
    assert "host_side_loss" in summary["comparison"]["not_trusted"][0]["tripped"]


def test_summary_json_keys_and_units(built):
    summary, paths = built
    on_disk = json.loads(paths["json"].read_text())
    assert on_disk == json.loads(json.dumps(summary))
    assert on_disk["format"] == "fabric-compare-summary" and on_disk["format_version"] == 1
    for key in ("status", "repeats", "workload", "scale", "designs", "comparison", "cost_inputs", "commands", "notes"):
        assert key in on_disk
    assert on_disk["scale"]["k"] == K
    d = on_disk["designs"][0]
    for key in ("name", "kind", "topology_path", "status", "runs", "figures", "figures_na", "spread_rsd", "classes",
                "classes_na", "classes_spread_rsd", "eta", "cpmt", "fidelity", "repeats_ok", "scale_k"):
        assert key in d, key
    for key in ("eta_combined", "cpmt_total_usd_per_mtok", "cpmt_output_usd_per_mtok", "network_share",
                "loss_ratio", "core_imbalance_max_over_mean", "tokens_per_kwh", "tokens_per_s_per_mw",
                "facility_power_kw"):
        assert isinstance(d["figures"][key], float), key
    assert set(d["classes"]["kv"]) >= {"owd_p50_us", "owd_p99_us", "owd_p99_9_us", "mct_p99_ms", "loss_ratio"}
    assert d["figures"]["eta_tp"] is None and "all-reduce" in d["figures_na"]["eta_tp"]
    assert d["spread_rsd"]["eta_combined"] is None          # one repeat: spread unknown
    run = d["runs"][0]
    for key in ("repeat", "run_dir", "status", "reason", "fidelity_verdict", "wall_time_s"):
        assert key in run
    comp = on_disk["comparison"]
    assert comp["baseline"] == "leaf-spine-ecmp"
    eta_sig = comp["significance"]["pairs"][0]["figures"]["eta_combined"]
    assert isinstance(eta_sig["significant"], bool) and "bootstrap" in eta_sig["why"]   # one repeat: the runs' intervals
    assert comp["significance"]["pairs"][0]["figures"]["loss_ratio"]["significant"] is None
    assert on_disk["commands"]["compare"].startswith("fabric compare ")
    assert all(c.startswith("fabric run --topo ") and "--scale 20" in c for c in on_disk["commands"]["runs"])


def test_break_even_follows_compare_break_even(built, two_designs):
    from fabric.economics import break_even_ratio, compare_break_even, cpmt_for_run
    summary, _ = built
    a, b = (cpmt_for_run(p) for p in two_designs)
    expected = compare_break_even(a, b)
    be = summary["comparison"]["break_even"][0]
    assert (be["a"], be["b"]) == ("leaf-spine-ecmp", "scheduled-fabric")
    assert be["eta_ratio"] == pytest.approx(expected["eta_ratio"])
    assert be["b_wins"] == expected["b_wins"]
    assert be["eta_ratio_needed"] == pytest.approx(break_even_ratio(expected["network_share_a"],
                                                                     expected["network_premium_b"]))
    assert "1 + f·p" in be["statement"]


def test_owd_percentiles_in_the_table_match_metrics_json(built, two_designs):
    summary, _ = built
    m = json.loads((two_designs[1] / "metrics.json").read_text())
    d = next(x for x in summary["designs"] if x["name"] == "scheduled-fabric")
    for kind, cm in m["classes"].items():
        want = cm["owd_us"]["p99"]
        got = d["classes"][kind]["owd_p99_us"]
        assert got == want or (want == "inf" and got == "inf")
        assert d["classes"][kind]["loss_ratio"] == pytest.approx(cm["loss_ratio"])


def test_repeats_spread_and_significance(tmp_path):
    from fabric.commands.report import summary_from_run_dirs
    from fabric.report import tables as T
    # ECMP's repeats differ by 20 vs 30 µs of mean queueing (a wide spread); spray sits at 25 µs, inside it.
    runs = [design_run(ECMP, tmp_path / f"ecmp-r{i}", queue_us=q, rng_seed=i) for i, q in ((1, 20), (2, 30))]
    runs += [design_run(SPRAY, tmp_path / f"spray-r{i}", queue_us=25, rng_seed=10 + i) for i in (1, 2)]
    runs += [design_run(SCHED, tmp_path / f"sched-r{i}", queue_us=400, rng_seed=20 + i) for i in (1, 2)]
    s = summary_from_run_dirs(runs)
    assert s["repeats"] == 2
    names = [d["name"] for d in s["designs"]]
    assert names == ["leaf-spine-ecmp", "leaf-spine-spray", "scheduled-fabric"]
    for d in s["designs"]:
        assert d["repeats_ok"] == 2
        assert isinstance(d["classes_spread_rsd"]["background"]["owd_p50_us"], float)
    pairs = {p["b"]: p["figures"] for p in s["comparison"]["significance"]["pairs"]}
    # spray inside ECMP's spread: not significant; 16x the queueing: well outside it
    assert pairs["leaf-spine-spray"]["background.owd_p99_us"]["significant"] is False
    assert pairs["scheduled-fabric"]["background.owd_p99_us"]["significant"] is True
    t = T.class_table(s)
    spray_bg = next(r for r in t.rows if r[:2] == ["background", "leaf-spine-spray"])
    assert "(n.s.)" in spray_bg[4] and "±" in spray_bg[4]


def test_relative_spread_and_aggregate():
    from fabric.report.summary import aggregate, relative_spread
    assert relative_spread([10.0, 12.0]) == pytest.approx(np.std([10, 12], ddof=1) / 11)
    assert relative_spread([10.0]) is None
    assert relative_spread([math.inf, 3.0]) is None
    assert aggregate([1.0, math.inf]) == math.inf
    assert aggregate([None, None]) is None
    assert aggregate([1.0, 3.0]) == 2.0


def test_failed_design_shows_n_a_with_its_reason(two_designs, tmp_path):
    from fabric.report.render import write_report
    from fabric.report.summary import DesignRecord, RunRecord, build_summary, load_run
    ok = DesignRecord("leaf-spine-ecmp", "leaf-spine", str(ECMP),
                      runs=[load_run(RunRecord("leaf-spine-ecmp", 1, two_designs[0], status="ok"))])
    bad = DesignRecord("leaf-spine-spray", "leaf-spine", str(SPRAY),
                       runs=[RunRecord("leaf-spine-spray", 1, tmp_path / "x", status="failed",
                                       reason="fabric-receiver died (exit code 1) during the run")])
    s = build_summary([ok, bad], repeats=1)
    assert s["designs"][1]["status"] == "failed"
    assert s["designs"][1]["figures"]["cpmt_total_usd_per_mtok"] is None
    paths = write_report(s, tmp_path / "out" / "report.html")
    html = paths["html"].read_text()
    assert "fabric-receiver died (exit code 1)" in html
    from fabric.report import tables as T
    row = T.verdict_table(s).rows[1]
    assert row[1].startswith("FAILED") and all(c.startswith("n/a [") for c in row[3:])
    assert "leaf-spine-spray vs leaf-spine-ecmp: n/a" in " ".join(T.break_even_lines(s))


def test_report_command_writes_three_files(two_designs, tmp_path):
    from typer.testing import CliRunner

    from tests.unit.test_compare_cli import cli_app
    out = tmp_path / "r" / "report.html"
    res = CliRunner().invoke(cli_app(), ["report", *map(str, two_designs), "-o", str(out)])
    assert res.exit_code == 0, res.output
    assert out.exists() and (out.parent / "report.md").exists() and (out.parent / "summary.json").exists()
    assert "Verdict per design" in res.output and str(out) in res.output


def test_report_command_refuses_a_non_run_directory(tmp_path):
    from typer.testing import CliRunner

    from tests.unit.test_compare_cli import cli_app
    (tmp_path / "empty").mkdir()
    res = CliRunner().invoke(cli_app(), ["report", str(tmp_path / "empty"), "-o", str(tmp_path / "r.html")])
    assert res.exit_code == 1
    assert res.output.strip().count("\n") == 0 and "run.json is missing" in res.output


def test_welch_interval_on_hand_worked_numbers():
    from fabric.report.summary import welch
    w = welch([1.0, 1.2, 0.8], [2.0, 2.2, 1.8])
    # difference 1.0; each variance 0.04 → se = √(2 · 0.04/3) = 0.1633; Welch df = 4; t(0.975, 4) = 2.776
    assert w["difference"] == pytest.approx(1.0)
    assert w["interval"] == pytest.approx([1.0 - 2.7764 * 0.16330, 1.0 + 2.7764 * 0.16330], rel=1e-4)
    assert w["p_value"] < 0.01
    assert welch([1.0], [2.0, 3.0]) is None                       # one repeat: no test
    assert welch([1.0, 1.1], [1.05, 1.0])["interval"][0] < 0       # overlapping: includes zero


# --------------------------------------------------------------------------------------------
# Intervals, winner, sensitivity, energy
# --------------------------------------------------------------------------------------------

def test_one_repeat_intervals_are_the_runs_bootstrap(built, two_designs):
    from fabric.economics import cpmt_for_run
    from fabric.report import tables as T
    summary, paths = built
    for d, run in zip(summary["designs"], two_designs):
        r = cpmt_for_run(run)
        iv = d["interval_95"]
        assert iv["eta_combined"] == pytest.approx(r["eta_interval"]["combined"])
        assert iv["eta_kv"] == pytest.approx(r["eta_interval"]["kv"])
        assert iv["eta_moe"] == pytest.approx(r["eta_interval"]["moe"])
        assert iv["eta_tp"] is None                                      # no all-reduce: no interval
        assert iv["cpmt_total_usd_per_mtok"] == pytest.approx(r["cpmt_total_interval"])
        assert iv["cpmt_output_usd_per_mtok"] == pytest.approx(r["cpmt_output_interval"])
        assert d["interval_method"]["eta_combined"].startswith("bootstrap")
        lo, hi = iv["cpmt_total_usd_per_mtok"]
        assert lo <= d["figures"]["cpmt_total_usd_per_mtok"] <= hi
    t = T.verdict_table(summary)
    ecmp = dict(zip(t.headers, t.rows[0]))
    lo, hi = summary["designs"][0]["interval_95"]["eta_moe"]
    assert f"[{lo:.4f}–{hi:.4f}]" in ecmp["η MoE"]
    assert any(n.startswith("[lo–hi] = 95% interval") and "bootstrap" in n for n in t.notes)
    md = paths["md"].read_text()
    assert ecmp["CPMT output $/Mtok"] in md and "[lo–hi] = 95% interval" in md
    assert ecmp["CPMT output $/Mtok"] in paths["html"].read_text()


def test_repeat_intervals_are_student_t_over_repeats(tmp_path):
    from scipy import stats

    from fabric.commands.report import summary_from_run_dirs
    from fabric.report import tables as T
    runs = [design_run(ECMP, tmp_path / f"ecmp-r{i}", queue_us=q, rng_seed=i) for i, q in ((1, 20), (2, 30))]
    runs += [design_run(SPRAY, tmp_path / f"spray-r{i}", queue_us=25, rng_seed=10 + i) for i in (1, 2)]
    s = summary_from_run_dirs(runs)
    for d in s["designs"]:
        x = d["samples"]["cpmt_total_usd_per_mtok"]
        half = stats.t.ppf(0.975, 1) * np.std(x, ddof=1) / math.sqrt(2)   # t(0.975, 1) = 12.706
        assert d["interval_95"]["cpmt_total_usd_per_mtok"] == pytest.approx([np.mean(x) - half, np.mean(x) + half])
        assert d["interval_method"]["cpmt_total_usd_per_mtok"].startswith("repeats: Student-t")
    # spray sits inside ECMP's spread: the CPMT difference is a tie, and no winner is called anywhere
    comp = s["comparison"]
    be = comp["break_even"][0]
    assert be["cpmt_difference_significant"] is False and be["outcome"] == "tie"
    assert "TIE" in be["statement"] and "WINS" not in be["statement"] and "does not win" not in be["statement"]
    assert comp["winner"]["design"] is None and comp["winner"]["tied_with"]
    assert "No winner" in comp["winner"]["statement"]
    assert comp["lowest_cpmt_total"] in comp["winner"]["statement"]
    assert "Student-t" in " ".join(T.verdict_table(s).notes)


def test_a_winner_is_named_only_when_every_difference_is_significant():
    from fabric.report.summary import FIGURES, _outcome, _winner

    def entry(name, cpmt, lo, hi):
        return {"name": name, "cpmt": {"total_usd_per_mtok": cpmt},
                "figures": {k: None for k in FIGURES} | {"cpmt_total_usd_per_mtok": cpmt},
                "spread_rsd": {k: None for k in FIGURES},
                "samples": {"cpmt_total_usd_per_mtok": [cpmt]},
                "intervals": {"cpmt_total_usd_per_mtok": [lo, hi]}, "classes": {}, "classes_spread_rsd": {}}
    a, b, c = entry("a", 1.00, 0.95, 1.05), entry("b", 0.80, 0.78, 0.82), entry("c", 0.81, 0.79, 0.83)
    w = _winner([a, b], "b")
    assert w["design"] == "b" and w["significantly_below"] == ["a"]
    w = _winner([a, b, c], "b")                       # c's interval overlaps b's: a tie, no winner
    assert w["design"] is None and w["tied_with"] == ["c"] and w["significantly_below"] == ["a"]
    no_interval = dict(c, intervals={})
    w = _winner([a, b, no_interval], "b")
    assert w["design"] is None and w["unjudged"] == ["c"]
    assert _outcome(True, False) == "tie" and _outcome(False, False) == "tie"
    assert _outcome(True, True) == "b_wins" and _outcome(False, None) == "a_wins_unjudged"


def test_sensitivity_of_the_verdict_in_summary_tables_and_plots(built, two_designs):
    from fabric.economics import cpmt_sensitivity
    from fabric.report import tables as T
    summary, paths = built
    sens = summary["comparison"]["sensitivity"]
    # the baseline is cheapest here: the tornado is of the other design against it, and says so
    assert (sens["a"], sens["b"]) == ("leaf-spine-ecmp", "scheduled-fabric")
    assert sens["skipped"] is None and "lowest CPMT" in sens["note"]
    want = cpmt_sensitivity(two_designs[1], None, baseline_dir=two_designs[0])
    assert sens["figure"] == "cpmt_ratio"
    assert sens["base"] == pytest.approx(want["base"])
    assert sens["base"] == pytest.approx(summary["comparison"]["break_even"][0]["cpmt_total_ratio"])
    assert [s["input"] for s in sens["swings"]] == [s["input"] for s in want["swings"]]
    spreads = [s["spread"] for s in sens["swings"]]
    assert spreads == sorted(spreads, reverse=True)
    t = T.sensitivity_table(summary)
    assert len(t.rows) == len(sens["swings"]) and t.rows[0][0] == sens["swings"][0]["input"]
    md = paths["md"].read_text()
    assert "## Sensitivity of the verdict" in md and T.markdown_table(t) in md
    curve = T.break_even_curve_table(summary)
    assert curve.rows[1] == ["10%", "10%", "20%", "50%", "100%"]       # f = 10%: (r − 1)/f for r − 1 = 1, 2, 5, 10%
    assert T.markdown_table(curve) in md
    html = paths["html"].read_text()
    assert html.index('id="sensitivity"') < html.index('alt="Sensitivity of the CPMT ratio (tornado)"')
    ids = re.findall(r' id="([^"]+)"', html)
    assert len(ids) == len(set(ids)), sorted(i for i in ids if ids.count(i) > 1)      # anchors stay unique
    assert 'alt="Break-even network premium against network share"' in html


def test_sensitivity_is_skipped_with_a_note_when_a_design_has_no_finished_run(two_designs, tmp_path):
    from fabric.report import tables as T
    from fabric.report.summary import DesignRecord, RunRecord, build_summary, load_run
    ok = DesignRecord("leaf-spine-ecmp", "leaf-spine", str(ECMP),
                      runs=[load_run(RunRecord("leaf-spine-ecmp", 1, two_designs[0], status="ok"))])
    bad = DesignRecord("leaf-spine-spray", "leaf-spine", str(SPRAY),
                       runs=[RunRecord("leaf-spine-spray", 1, tmp_path / "x", status="failed", reason="boom")])
    s = build_summary([bad, ok], repeats=1)
    assert s["comparison"]["sensitivity"]["skipped"] == "leaf-spine-spray has no finished run with a cost model"
    assert "swings" not in s["comparison"]["sensitivity"]
    assert T.sensitivity_table(s).notes == ["n/a: leaf-spine-spray has no finished run with a cost model"]
    assert "break-even-curve" not in T.all_tables(s)
    assert build_summary([ok], repeats=1)["comparison"]["sensitivity"] is None    # one design: nothing to compare


def test_energy_next_to_cpmt_in_the_design_table(built, two_designs):
    from fabric.economics import cpmt_for_run
    from fabric.report import tables as T
    summary, _ = built
    t = T.economics_table(summary)
    for row, d, run in zip(t.rows, summary["designs"], two_designs):
        cells = dict(zip(t.headers, row))
        en = cpmt_for_run(run)["energy"]
        assert d["energy"]["tokens_per_kwh"] == pytest.approx(en["tokens_per_kwh"])
        assert cells["Tokens per kWh"] == f"{en['tokens_per_kwh']:,.0f}"
        assert cells["Tokens/s per MW"] == f"{en['tokens_per_s_per_mw']:,.0f}"
        assert cells["CPMT total $/Mtok"].startswith(f"${d['figures']['cpmt_total_usd_per_mtok']:.4f} [")
    # the slower fabric serves fewer tokens from (about) the same power
    ecmp, sched = summary["designs"]
    assert sched["energy"]["tokens_per_kwh"] < ecmp["energy"]["tokens_per_kwh"]
