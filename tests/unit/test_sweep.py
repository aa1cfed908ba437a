"""``fabric sweep`` without root: grid and points expansion with dotted-path overrides, one clear
error for a bad key or value (and nothing created), hashing and resume, a failing point recorded
while the rest complete, the emulator's Dask resource, Pareto marking, and the max_rate_within_slo
bisection — with the engines replaced by a writer of synthetic run directories
(tests.unit.test_report.synthetic_run) and Dask's synchronous scheduler or a tiny local cluster.
One test runs a real 2-point sweep on the packet simulator when ns-3 is installed."""

from __future__ import annotations

import importlib.util
import json
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from fabric.errors import SpecError
from fabric.sweep import load_sweep, plan_sweep, run_sweep, write_sweep_results
from fabric.sweep.executor import DaskExecutor, SynchronousExecutor
from fabric.sweep.find import RateSearch
from fabric.sweep.paths import PathError, get_value, parse_path, set_value
from fabric.sweep.results import pareto_mask

REPO = Path(__file__).resolve().parents[2]
DESIGN = REPO / "scenarios" / "base" / "small-leaf-spine.yaml"
RATE_KEY = "workload.patterns[kv].arrivals.rate_per_s"

# A short KV-only profile: few, small messages, so a synthetic run at k = 1 takes milliseconds.
PROFILE = {
    "name": "tiny-kv", "model": "Llama-3-70B", "duration": "200ms", "seed": 1,
    "patterns": [{"type": "disaggregated", "name": "kv",
                  "prefill": {"role": "prefill", "instance_hosts": 2}, "decode": {"role": "decode", "instance_hosts": 4},
                  "arrivals": {"process": "poisson", "rate_per_s": 40},
                  "prompt_tokens": {"dist": "fixed", "tokens": 16}, "output_tokens": {"dist": "fixed", "tokens": 64}}],
}


def write_sweep(tmp: Path, body: dict, profile: dict | None = None) -> Path:
    (tmp / "wl.yaml").write_text(yaml.safe_dump(profile or PROFILE, sort_keys=False))
    data = {"name": "t", "design": str(DESIGN), "workload": "wl.yaml", **body}
    path = tmp / "sweep.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


# --------------------------------------------------------------------------------------------
# Fake engines (module level: a Dask worker imports them by name)
# --------------------------------------------------------------------------------------------

CALLS: list[dict] = []
FAIL_ON: dict = {}          # swept key -> value whose point raises
SLO_THRESHOLD = {"rate": 55.0}
SPANS: list[tuple[str, float, float]] = []


def fake_runner(spec, g, schedule, out_dir, options, progress=None):
    """A synthetic run directory; raises for FAIL_ON values; slow queues above SLO_THRESHOLD['rate']."""
    from tests.unit.test_report import synthetic_run
    values = options.extra["sweep"]["values"]
    CALLS.append({"name": options.name, "values": dict(values), "seed": options.seed, "spec": spec,
                  "out_dir": Path(out_dir)})
    for key, bad in FAIL_ON.items():
        if values.get(key) == bad:
            raise RuntimeError(f"injected failure at {key}={bad}")
    rate = values.get(RATE_KEY)
    # A fabric that is fine up to a load and congested past it: the SLO holds exactly up to the threshold.
    queue_us = 20_000.0 if rate is not None and rate > SLO_THRESHOLD["rate"] else 5.0
    return synthetic_run(spec, g, schedule, out_dir, k=options.scale or 1.0, seed=options.seed,
                         hash_seed=options.hash_seed, name=options.name, queue_us=queue_us)


def timed_runner(spec, g, schedule, out_dir, options, progress=None):
    """Records when each engine's run starts and ends (for the emulator-resource test)."""
    from fabric.sweep.engines import options_for
    engine = "emu" if type(options) is type(options_for("emu", seed=1, hash_seed=1, scale=None, name="x",
                                                              extra={})) else "sim"
    t0 = time.monotonic()
    time.sleep(0.4)
    out = fake_runner(spec, g, schedule, out_dir, options)
    SPANS.append((engine, t0, time.monotonic()))
    return out


@pytest.fixture(autouse=True)
def _reset():
    CALLS.clear()
    FAIL_ON.clear()
    SPANS.clear()
    yield


# --------------------------------------------------------------------------------------------
# Dotted paths, grid and points
# --------------------------------------------------------------------------------------------

def test_dotted_paths_read_and_write_copies():
    data = {"a": {"b": 1}, "patterns": [{"name": "kv", "rate": 1}, {"name": "bg", "load": "5%"}]}
    assert get_value(data, parse_path("patterns[bg].load")) == "5%"
    out = set_value(data, parse_path("patterns[1].load"), "9%")
    assert out["patterns"][1]["load"] == "9%" and data["patterns"][1]["load"] == "5%"
    assert set_value(data, parse_path("scheduler.tick"), "1ms")["scheduler"] == {"tick": "1ms"}
    with pytest.raises(PathError, match=r"2 entries \(0..1\); no \[5\]"):
        set_value(data, parse_path("patterns[5].load"), 1)
    with pytest.raises(PathError, match="no entry named 'nope'; names: kv, bg"):
        set_value(data, parse_path("patterns[nope].load"), 1)
    with pytest.raises(PathError):
        parse_path("a..b")


def test_grid_is_the_cartesian_product_with_overrides_in_place(tmp_path):
    path = write_sweep(tmp_path, {"seeds": [1, 2], "grid": {
        "design.buffer_per_port": ["1MB", "8MB"], "design.load_balancing.mode": ["ecmp", "spray"],
        RATE_KEY: [40, 60]}})
    plan = plan_sweep(load_sweep(path))
    assert len(plan.points) == 2 * 2 * 2 * 2
    assert len({p.hash for p in plan.points}) == len(plan.points)
    combos = {(p.design["buffer_per_port"], p.design["load_balancing"]["mode"],
               p.workload["patterns"][0]["arrivals"]["rate_per_s"], p.seed) for p in plan.points}
    assert combos == {(b, m, r, s) for b in ("1MB", "8MB") for m in ("ecmp", "spray") for r in (40, 60) for s in (1, 2)}
    # Everything else is the base design, untouched.
    base = yaml.safe_load(DESIGN.read_text())
    for p in plan.points:
        assert {k: v for k, v in p.design.items() if k not in ("buffer_per_port", "load_balancing")} == \
               {k: v for k, v in base.items() if k not in ("buffer_per_port", "load_balancing")}
        assert p.design["load_balancing"]["hash_seed"] == 7


def test_points_list_and_the_profile_seed_by_default(tmp_path):
    path = write_sweep(tmp_path, {"points": [{"design.spines": 2}, {"design.spines": 4, RATE_KEY: 50}]})
    plan = plan_sweep(load_sweep(path))
    assert [p.design["spines"] for p in plan.points] == [2, 4]
    assert plan.points[1].workload["patterns"][0]["arrivals"]["rate_per_s"] == 50
    assert [p.seed for p in plan.points] == [1, 1] and {p.engine for p in plan.points} == {"sim"}


def test_hash_covers_every_input_and_nothing_else(tmp_path):
    from fabric.sweep.plan import point_hash
    d, w = {"a": 1, "b": {"c": 2}}, {"x": [1, 2]}
    h = point_hash(d, w, 1, "sim", None)
    assert h == point_hash({"b": {"c": 2}, "a": 1}, w, 1, "sim", None)       # key order is not an input
    assert len({h, point_hash(d, w, 2, "sim", None), point_hash(d, w, 1, "emu", None),
                point_hash({**d, "a": 2}, w, 1, "sim", None), point_hash(d, {"x": [2, 1]}, 1, "sim", None),
                point_hash(d, w, 1, "sim", 10.0)}) == 6


# --------------------------------------------------------------------------------------------
# One clear error, nothing created
# --------------------------------------------------------------------------------------------

def cli():
    from fabric.cli import app
    return app


@pytest.mark.parametrize("grid, key, words", [
    ({"design.spinez": [2]}, "grid.design.spinez", ["unknown key", "2"]),
    ({"design.spines": [2, -1]}, "grid.design.spines", ["-1", "at least 1"]),
    ({"design.load_balancing.mode": ["ecmp", "flowlet"]}, "grid.design.load_balancing.mode", ["'flowlet'", "ecmp"]),
    ({"workload.patterns[3].load": ["5%"]}, "grid.workload.patterns[3].load", ["no [3]", "'5%'"]),
    ({"fabric.spines": [2]}, "grid.fabric.spines", ["design. or workload."]),
])
def test_a_bad_key_or_value_is_one_line_naming_file_key_and_value(tmp_path, grid, key, words):
    assert_refused_in_one_line(write_sweep(tmp_path, {"grid": grid}), tmp_path / "out", key, words)


def assert_refused_in_one_line(path: Path, out: Path, key: str, words: list[str]) -> None:
    """`fabric sweep PATH` exits 1 with one line naming the file, the key and ``words``; nothing ran or was written."""
    res = CliRunner().invoke(cli(), ["sweep", str(path), "--out", str(out), "--sync"])
    assert res.exit_code == 1, res.output
    lines = res.output.strip().splitlines()
    assert len(lines) == 1, res.output
    assert lines[0].startswith(f"error: {path}: {key}: "), lines[0]
    for w in words:
        assert w in lines[0], lines[0]
    assert not out.exists() and not CALLS


def test_a_point_whose_schedule_cannot_be_generated_is_named(tmp_path):
    # The value parses, but on this design and duration the profile then generates no message.
    path = write_sweep(tmp_path, {"points": [{RATE_KEY: 50}, {RATE_KEY: 0.001}]})
    with pytest.raises(SpecError) as err:
        plan_sweep(load_sweep(path))
    assert err.value.source == str(path) and err.value.key == "points[1]" and "no messages" in str(err.value)


# --------------------------------------------------------------------------------------------
# Running: resume, failures, results
# --------------------------------------------------------------------------------------------

def run(path: Path, out: Path, runner=fake_runner, executor=None):
    plan = plan_sweep(load_sweep(path))
    result = run_sweep(plan, out, executor or SynchronousExecutor(runner))
    return result, write_sweep_results(result)


def test_points_land_in_hashed_run_directories_and_a_second_invocation_runs_nothing(tmp_path):
    path = write_sweep(tmp_path, {"grid": {"design.load_balancing.mode": ["ecmp", "spray"], RATE_KEY: [40, 60]}})
    out = tmp_path / "out"
    result, paths = run(path, out)
    assert len(CALLS) == 4 and result.counts == {"ok": 4} and result.exit_code == 0
    for r in result.records:
        run_dir = out / "points" / r.point.hash
        assert (run_dir / "run.json").is_file() and (run_dir / "metrics.json").is_file()
        recorded = json.loads((run_dir / "run.json").read_text())
        assert recorded["topology"]["spec"]["load_balancing"]["mode"] == r.point.design["load_balancing"]["mode"]
        assert json.loads((out / "points" / f"{r.point.hash}.json").read_text())["status"] == "ok"
    frame = pd.read_parquet(out / "sweep.parquet")
    assert len(frame) == 4 and set(frame["status"]) == {"ok"}
    assert {"design.load_balancing.mode", RATE_KEY, "eta_combined", "eta_combined_lo", "eta_combined_hi",
            "cpmt_total_usd_per_mtok", "cpmt_total_lo", "ttft_p99_s", "mct_p99_ms.kv", "owd_p99_us.kv",
            "fidelity", "pareto"} <= set(frame.columns)
    assert (out / "sweep.md").is_file() and paths["plots"]
    assert {p.name for p in paths["plots"]} == {"sweep_design.load_balancing.mode.png",
                                                "sweep_workload.patterns_kv_.arrivals.rate_per_s.png"}

    CALLS.clear()
    again, _ = run(path, out)
    assert CALLS == [] and again.counts == {"cached": 4} and again.ran == 0
    frame2 = pd.read_parquet(out / "sweep.parquet")
    assert frame2["cpmt_total_usd_per_mtok"].tolist() == frame["cpmt_total_usd_per_mtok"].tolist()

    # A new value adds one point and runs only that one.
    path.write_text(path.read_text().replace("- 60", "- 60\n  - 50"))
    third, _ = run(path, out)
    assert len(CALLS) == 2 and third.counts == {"cached": 4, "ok": 2}


def test_a_failing_point_is_recorded_and_the_rest_complete(tmp_path):
    path = write_sweep(tmp_path, {"grid": {"design.buffer_per_port": ["1MB", "2MB", "4MB"]}})
    FAIL_ON["design.buffer_per_port"] = "2MB"
    out = tmp_path / "out"
    result, _ = run(path, out)
    assert len(CALLS) == 3 and result.counts == {"ok": 2, "failed": 1} and result.exit_code == 0
    frame = pd.read_parquet(out / "sweep.parquet").set_index("design.buffer_per_port")
    assert frame.loc["2MB", "status"] == "failed" and "injected failure" in frame.loc["2MB", "reason"]
    assert not frame.loc["2MB", "pareto"] and np.isnan(frame.loc["2MB", "cpmt_total_usd_per_mtok"])
    assert (frame.loc[["1MB", "4MB"], "status"] == "ok").all()
    failed = next(r for r in result.records if r.status == "failed")
    assert not (out / "points" / failed.point.hash).exists()
    assert "injected failure" in json.loads((out / "points" / f"{failed.point.hash}.json").read_text())["reason"]
    assert "## Points that did not finish" in (out / "sweep.md").read_text()
    # The failed point is tried again next time; the finished ones are not.
    FAIL_ON.clear()
    CALLS.clear()
    again, _ = run(path, out)
    assert [c["values"]["design.buffer_per_port"] for c in CALLS] == ["2MB"] and again.counts == {"cached": 2, "ok": 1}


def test_when_every_point_fails_the_exit_status_is_1(tmp_path):
    path = write_sweep(tmp_path, {"grid": {"design.buffer_per_port": ["1MB"]}})
    FAIL_ON["design.buffer_per_port"] = "1MB"
    result, _ = run(path, tmp_path / "out")
    assert result.exit_code == 1


# --------------------------------------------------------------------------------------------
# The emulator resource
# --------------------------------------------------------------------------------------------

def test_emulation_points_declare_the_emulator_resource():
    from fabric.sweep.engines import EMULATOR_RESOURCE, resources_for
    assert resources_for("emu") == {EMULATOR_RESOURCE: 1} and resources_for("sim") is None


def test_local_cluster_runs_one_emulation_at_a_time_beside_simulations(tmp_path):
    path = write_sweep(tmp_path, {"engine": ["emu", "sim"], "grid": {"design.buffer_per_port": ["1MB", "2MB", "4MB"]}})
    plan = plan_sweep(load_sweep(path))
    with DaskExecutor.local(workers=3, processes=False, runner=timed_runner) as ex:
        info = ex.client.scheduler_info(n_workers=-1)["workers"]
        assert sorted(float((w.get("resources") or {}).get("emulator", 0)) for w in info.values()) == [0, 0, 1]
        ex.check_resources({"emu", "sim"})
        result = run_sweep(plan, tmp_path / "out", ex)
    assert result.counts == {"ok": 6}
    emu = sorted((a, b) for e, a, b in SPANS if e == "emu")
    assert len(emu) == 3
    assert all(b1 <= a2 for (_, b1), (a2, _) in zip(emu, emu[1:])), "two emulations overlapped"
    sims = [(a, b) for e, a, b in SPANS if e == "sim"]
    assert any(a < eb and ea < b for a, b in sims for ea, eb in emu), "no simulation ran beside an emulation"


def test_a_cluster_without_the_emulator_resource_is_refused_for_emulation():
    from fabric.errors import EnvironmentNotReady

    class FakeClient:
        def __init__(self, workers):
            self.workers = workers

        def scheduler_info(self, n_workers=-1):
            return {"workers": self.workers}

    ex = DaskExecutor(FakeClient({"a": {"host": "m1", "resources": {}}}), description="fake")
    ex.check_resources({"sim"})
    with pytest.raises(EnvironmentNotReady, match="--resources emulator=1"):
        ex.check_resources({"emu"})
    ex = DaskExecutor(FakeClient({"a": {"host": "m1", "resources": {"emulator": 1}},
                                  "b": {"host": "m1", "resources": {"emulator": 1}},
                                  "c": {"host": "m2", "resources": {"emulator": 1}}}), description="fake")
    with pytest.raises(EnvironmentNotReady, match="m1 offer 2 units"):
        ex.check_resources({"emu"})
    ex = DaskExecutor(FakeClient({"a": {"host": "m1", "resources": {"emulator": 1}},
                                  "b": {"host": "m1", "resources": {}}}), description="fake")
    ex.check_resources({"emu", "sim"})


# --------------------------------------------------------------------------------------------
# Pareto and the SLO-bound search
# --------------------------------------------------------------------------------------------

def test_pareto_marks_the_points_no_other_beats():
    frame = pd.DataFrame({
        "status": ["ok", "ok", "ok", "ok", "ok", "failed", "ok"],
        "cpmt_total_usd_per_mtok": [1.0, 2.0, 1.5, 3.0, 1.0, 0.1, np.nan],
        "ttft_p99_s": [0.5, 0.2, 0.6, 0.1, 0.5, 0.01, 0.01],
        "tpot_p99_s": [np.nan] * 7,            # measured by no row: not an objective
    })
    # 0 and 4 tie (neither beats the other); 2 is beaten by 0; 5 failed; 6 has no CPMT.
    assert pareto_mask(frame).tolist() == [True, True, False, True, True, False, False]
    frame["tpot_p99_s"] = [0.09, 0.09, 0.01, 0.09, 0.09, 0.01, 0.01]
    assert pareto_mask(frame).tolist() == [True, True, True, True, True, False, False]


def test_rate_search_bisects_a_monotone_slo():
    def limit(x):
        return x <= 63.0
    s = RateSearch(10, 110, 5)
    runs = 0
    while not s.done:
        values = s.next_values()
        assert values
        for v in values:
            runs += 1
            s.record(v, limit(v))
    assert runs == 2 + 5
    lo, hi = s.bracket
    assert s.found == lo and lo <= 63.0 < hi and hi - lo == pytest.approx(100 / 2**5)
    s2 = RateSearch(10, 110, 3)
    for v in s2.next_values():
        s2.record(v, True)
    assert s2.done and s2.found == 110 and s2.at_high_bound
    s3 = RateSearch(10, 110, 3)
    for v in s3.next_values():
        s3.record(v, False)
    assert s3.done and s3.found is None


def test_max_rate_within_slo_on_a_fake_monotone_runner(tmp_path):
    costs = tmp_path / "costs.yaml"
    costs.write_text("slo:\n  ttft_p99_s: 0.08\n")
    path = write_sweep(tmp_path, {"costs": str(costs), "grid": {"design.load_balancing.mode": ["ecmp", "spray"]},
                                  "find": {"max_rate_within_slo": {"key": RATE_KEY, "range": [20, 100], "steps": 3}}})
    out = tmp_path / "out"
    result, paths = run(path, out)
    assert len(result.searches) == 2 and len(CALLS) == 2 * (2 + 3)
    searches = json.loads(paths["find"].read_text())["searches"]
    for s in searches:
        assert s["found"] is not None and s["found"] <= SLO_THRESHOLD["rate"] < s["found"] + 80 / 2**3
        assert s["eta_combined"] is not None and s["cpmt_total_usd_per_mtok"] is not None
        # η and CPMT reported are those of the run at the rate found.
        rec = next(r for r in result.records if r.point.hash == s["point"])
        assert dict(rec.point.values)[RATE_KEY] == s["found"]
        assert s["cpmt_total_usd_per_mtok"] == rec.cpmt["cpmt_total_usd_per_mtok"]
    frame = pd.read_parquet(out / "sweep.parquet")
    assert set(frame["role"]) == {"find"} and len(frame) == 10
    assert "Highest rate within the SLOs" in (out / "sweep.md").read_text()
    # Resumed: the search replays from the run directories without running anything.
    CALLS.clear()
    again, paths2 = run(path, out)
    assert CALLS == [] and json.loads(paths2["find"].read_text())["searches"] == searches


def test_find_refuses_a_range_the_profile_rejects(tmp_path):
    path = write_sweep(tmp_path, {"find": {"max_rate_within_slo": {"key": "workload.patterns[kv].arrivals.rate",
                                                                   "range": [1, 2]}}})
    with pytest.raises(SpecError) as err:
        plan_sweep(load_sweep(path))
    assert err.value.key == "find.max_rate_within_slo.range" and "rate" in str(err.value)


# --------------------------------------------------------------------------------------------
# A real sweep on the packet simulator
# --------------------------------------------------------------------------------------------

@pytest.mark.skipif(importlib.util.find_spec("ns3") is None, reason="the packet simulator needs the ns3 wheel")
def test_a_real_two_point_sweep_on_the_simulator(tmp_path):
    kv = {**PROFILE["patterns"][0], "arrivals": {"process": "poisson", "rate_per_s": 150}}
    profile = {"name": "tiny-kv-bg", "model": "Llama-3-70B", "duration": "50ms", "seed": 1,
               "patterns": [kv,
                            {"type": "background", "name": "background", "hosts": "all", "destinations": "all",
                             "message": "1MB", "load": "2%"}]}
    path = write_sweep(tmp_path, {"grid": {"design.load_balancing.mode": ["ecmp", "spray"]}}, profile)
    out = tmp_path / "out"
    t = time.time()
    res = CliRunner().invoke(cli(), ["sweep", str(path), "--out", str(out), "--workers", "2", "--quiet"])
    assert res.exit_code == 0, res.output
    assert time.time() - t < 60
    frame = pd.read_parquet(out / "sweep.parquet")
    assert frame["status"].tolist() == ["ok", "ok"] and (frame["engine"] == "sim").all()
    for h in frame["point"]:
        assert json.loads((out / "points" / h / "run.json").read_text())["engine"] == "sim"
    assert frame["cpmt_total_usd_per_mtok"].notna().all() and frame["mct_p99_ms.kv"].notna().all()


def test_dask_executor_runs_tasks_off_the_main_thread():
    # Why the emulator runs in a child process on workers: pool threads cannot install signal handlers.
    with DaskExecutor.local(workers=1, processes=False) as ex:
        on_main = ex.client.submit(lambda: threading.current_thread() is threading.main_thread()).result()
    assert on_main is False


def interrupting_runner(spec, g, schedule, out_dir, options, progress=None):
    if len(CALLS) >= 1:
        CALLS.append({"values": dict(options.extra["sweep"]["values"])})
        raise KeyboardInterrupt
    return fake_runner(spec, g, schedule, out_dir, options)


def test_ctrl_c_keeps_the_finished_points_and_still_writes_the_results(tmp_path):
    path = write_sweep(tmp_path, {"grid": {"design.buffer_per_port": ["1MB", "2MB", "4MB"]}})
    out = tmp_path / "out"
    result, _ = run(path, out, interrupting_runner)
    assert result.interrupted and result.exit_code == 130
    assert [r.status for r in result.records] == ["ok", "not_run", "not_run"]
    frame = pd.read_parquet(out / "sweep.parquet")
    assert frame["status"].tolist() == ["ok", "not_run", "not_run"]
    assert not any(p.name.startswith(".") and "partial" in p.name for p in (out / "points").iterdir())
    # A worker killed mid-run leaves its staging directory; the next invocation removes it.
    stale = out / "points" / f".{result.records[1].point.hash}.partial-abc123"
    (stale / "sub").mkdir(parents=True)
    CALLS.clear()
    again, _ = run(path, out)
    assert not stale.exists()
    assert len(CALLS) == 2 and again.counts == {"cached": 1, "ok": 2}


def test_a_worker_without_the_clients_filesystem_returns_the_run_directory(tmp_path, monkeypatch):
    import fabric.sweep.point as point
    monkeypatch.setattr(point, "shares_filesystem", lambda out_root, token: False)
    path = write_sweep(tmp_path, {"grid": {"design.buffer_per_port": ["1MB", "2MB"]}})
    out = tmp_path / "out"
    result, _ = run(path, out)
    assert result.counts == {"ok": 2}
    for r in result.records:
        run_dir = out / "points" / r.point.hash
        assert (run_dir / "run.json").is_file() and (run_dir / "messages.parquet").is_file()
        assert (run_dir / "metrics.json").is_file() and r.cpmt is not None
    # The workers wrote into a temporary directory of their own, removed after packing.
    assert len(CALLS) == 2
    for c in CALLS:
        assert out not in c["out_dir"].parents and c["out_dir"].name == c["name"] and not c["out_dir"].exists()


def test_find_refuses_a_low_end_without_slo_bound_messages(tmp_path):
    # Background traffic at the low end, but no KV request: no TTFT to compare with its SLO.
    profile = {**PROFILE, "patterns": PROFILE["patterns"] + [
        {"type": "background", "name": "bg", "hosts": "all", "destinations": "all", "message": "1MB", "load": "1%"}]}
    path = write_sweep(tmp_path, {"find": {"max_rate_within_slo": {"key": RATE_KEY, "range": [0.001, 50]}}}, profile)
    with pytest.raises(SpecError) as err:
        plan_sweep(load_sweep(path))
    assert err.value.key == "find.max_rate_within_slo.range" and "no kv, MoE or TP messages" in str(err.value)
    assert "0.001" in str(err.value)
