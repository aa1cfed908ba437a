"""Sweeps on Dask, end to end (issue 15's "done when"): ``fabric sweep`` as a user runs it, on a
two-worker local Dask cluster, with simulated points.

* Interrupt and resume: Ctrl-C (SIGINT to the command's process group, as a terminal sends it)
  once the first point has finished and another is mid-run; the command exits cleanly, keeps the
  finished points and leaves nothing half-written (no staging directory, no simulator process); the
  same command again runs only the points that had not finished, and the results cover them all.
* ``find: max_rate_within_slo``: the value the bisection finds is where p99 TPOT crosses the SLO
  on a grid of the same key run by the same engine, for each of two designs, and the report gives
  η and CPMT at the value found per design.

The workload is a TP4 ring all-reduce of a Llama-3-70B decode step over four hosts on two leaves
(half the ring's hops cross the spines); p99 TPOT (decode compute + the all-reduces' completion,
docs/economics.md §2) rises with the decode batch (``tokens``). The fabric links are 200G under
400G NICs: one ECMP path carries a cross-leaf hop at half the NIC rate, spraying over both spines
at the full rate, so the two load balancing modes cross the SLO at different batches. Every point
is one ns-3 process (~10 s, mostly start-up), deterministic.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from tests.processes import alive, pids_with
from tests.sim.conftest import needs_ns3

REPO = Path(__file__).resolve().parents[2]
TOKENS = "workload.patterns[tp].tokens"
MODE = "design.load_balancing.mode"

DESIGN = {"name": "sweep-test-leaf-spine", "kind": "leaf-spine", "leaves": 2, "spines": 2, "hosts_per_leaf": 2,
          "host_link_rate": "400G", "fabric_link_rate": "200G", "buffer_per_port": "4MB",
          "load_balancing": {"mode": "ecmp", "hash_seed": 7},
          "host_groups": [{"name": "decode", "count": 4, "accelerator": "H100", "role": "decode"}]}
WORKLOAD = {"name": "sweep-test-tp-decode", "model": "Llama-3-70B", "duration": "60ms", "seed": 1,
            "patterns": [{"type": "allreduce", "name": "tp", "ranks": {"role": "decode"}, "tp": 4, "phase": "decode",
                          "tokens": 128, "context_tokens": 2048, "layers_emulated": 2}]}


def _write(path: Path, data: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def _sweep_file(tmp: Path, name: str, **body) -> Path:
    _write(tmp / "base" / "design.yaml", DESIGN)
    _write(tmp / "base" / "workload.yaml", WORKLOAD)
    return _write(tmp / f"{name}.yaml", {"name": name, "design": "base/design.yaml", "workload": "base/workload.yaml",
                                         "engine": "sim", **body})


def _command(sweep: Path, out: Path) -> list[str]:
    return [sys.executable, "-c", "from fabric.cli import main; main()", "sweep", str(sweep), "--out", str(out),
            "--workers", "2"]


def _sweep(sweep: Path, out: Path, timeout: float = 600) -> subprocess.CompletedProcess:
    proc = subprocess.run(_command(sweep, out), cwd=REPO, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def _finished(out: Path) -> set[str]:
    """Points whose run directory is complete (run.json is written last, then the stage is renamed)."""
    return {d.parent.name for d in (out / "points").glob("*/run.json")}


def _staged(out: Path) -> set[str]:
    """Points whose run directory is being written (``.<hash>.partial-*``, renamed when complete)."""
    return {d.name.split(".")[1] for d in (out / "points").glob(".*.partial-*")}


@needs_ns3
def test_sweep_interrupted_and_resumed_on_a_two_worker_cluster(tmp_path):
    grid = {MODE: ["ecmp", "spray"], TOKENS: [64, 128, 256]}
    sweep = _sweep_file(tmp_path, "resume", grid=grid)
    out = tmp_path / "out"
    proc = subprocess.Popen(_command(sweep, out), cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    try:
        # Two workers: when the first point finishes its worker starts a third. Interrupt then, so that
        # a point is certainly mid-run (and at least four have not finished).
        deadline = time.time() + 300
        while proc.poll() is None and time.time() < deadline:
            if _finished(out) and len(_finished(out) | _staged(out)) >= 3:
                break
            time.sleep(0.1)
        assert proc.poll() is None, f"the sweep ended before a third point started: {proc.communicate()}"
        running = _staged(out) - _finished(out)
        assert running, "no point was running"
        os.killpg(proc.pid, signal.SIGINT)       # Ctrl-C: the whole foreground process group
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 130, stdout + stderr
    assert "interrupted" in stderr and "run the same command again to resume" in stderr

    before = _finished(out)
    # At least two points are left to resume. A point running at the SIGINT may still finish (and be
    # renamed into place) before its worker is killed: that is a complete run directory, not a race
    # to assert against (a clean-clone CI run saw both running points complete).
    assert 1 <= len(before) <= 4, (before, running)
    # Nothing of the interrupted points is left running or half-written: no simulator process, no
    # staging directory, no run directory without its run.json; the sweep's token is removed.
    deadline = time.time() + 30
    while time.time() < deadline and any(alive(pid) for pid in pids_with(str(out))):
        time.sleep(0.2)
    assert not [pid for pid in pids_with(str(out)) if alive(pid)]
    points = out / "points"
    assert not list(points.glob(".*")), sorted(p.name for p in points.glob(".*"))
    assert {d.name for d in points.iterdir() if d.is_dir()} == before
    assert not (out / ".sweep-token").exists()
    # The results written at the interruption cover the points whose outcome reached the client (a
    # point whose worker was still handing it back is not among them, but its run directory is kept).
    frame = pd.read_parquet(out / "sweep.parquet")
    assert len(frame) == 6 and set(frame["status"]) <= {"ok", "not_run", "failed"}
    assert set(frame.loc[frame["status"] == "ok", "point"]) <= before
    assert "— interrupted" in (out / "sweep.md").read_text()
    stamps = {h: _stamp(points / h) for h in before}

    resumed = _sweep(sweep, out)
    assert "6 point(s)" in resumed.stdout and f"{len(before)} cached" in resumed.stdout, resumed.stdout
    frame = pd.read_parquet(out / "sweep.parquet")
    assert len(frame) == 6 and (frame["role"] == "grid").all()
    assert sorted(map(tuple, frame[[MODE, TOKENS]].to_numpy().tolist())) == sorted(
        (m, t) for m in grid[MODE] for t in grid[TOKENS])
    assert (frame["status"] == "ok").all(), frame[["point", "status", "reason"]]
    # Points finished before the interruption were found, not run again: same directories, untouched.
    assert set(frame.loc[frame["cached"], "point"]) == before
    assert {h: _stamp(points / h, stamps[h][1]) for h in before} == stamps
    assert _finished(out) == set(frame["point"])
    assert not list(points.glob(".*"))
    for col in ("eta_tp", "eta_combined", "eta_combined_lo", "eta_combined_hi", "cpmt_total_usd_per_mtok",
                "cpmt_total_lo", "cpmt_total_hi", "tpot_p99_s", "tpot_slo_s"):
        values = frame[col].to_numpy(float)
        assert np.isfinite(values).all() and (values > 0).all(), (col, values)
    # The decode batch sets the all-reduce's size: p99 TPOT rises with it in both designs.
    for _, by_mode in frame.groupby(MODE):
        assert by_mode.sort_values(TOKENS)["tpot_p99_s"].is_monotonic_increasing
    for h in frame["point"]:
        record = json.loads((points / f"{h}.json").read_text())
        assert record["status"] == "ok" and record["engine"] == "sim"

    md = (out / "sweep.md").read_text()
    assert "## Points" in md and "## Pareto frontier" in md
    assert f"* points: {len(before)} cached, {6 - len(before)} ok\n" in md
    table = [line for line in md.splitlines() if line.startswith("| ") and not line.startswith("| point")]
    assert len(table) == 6 and all(f"| {h[:8]} |" in md for h in frame["point"])
    frontier = md.split("## Pareto frontier", 1)[1].split("\n## ", 1)[0]
    on_frontier = frame.loc[frame["pareto"], "point"]
    assert len(on_frontier) >= 1 and all(f"`{h[:8]}`" in frontier for h in on_frontier)
    assert not any(f"`{h[:8]}`" in frontier for h in frame.loc[~frame["pareto"], "point"])


def _stamp(run_dir: Path, names=None) -> tuple:
    """The directory's inode, and inode and modification time of each of its files (of ``names`` when
    given: the analysis may add metrics.json when the worker was stopped before writing it)."""
    if names is None:
        names = sorted(str(f.relative_to(run_dir)) for f in run_dir.rglob("*"))
    files = {}
    for name in names:
        try:
            st = (run_dir / name).stat()
            files[name] = (st.st_ino, st.st_mtime_ns)
        except FileNotFoundError:
            files[name] = None
    return run_dir.stat().st_ino, files


TPOT_SLO_S = 0.065      # p99 TPOT crosses it inside the range in both designs (~250 tokens ECMP, ~300 spray)
LOW, HIGH, STEPS = 192, 320, 4      # resolution (HIGH - LOW) / 2**STEPS = 8 tokens, ~3% of the crossings
GRID = list(range(LOW, HIGH + 1, 32))   # 5 values: a search's first two probes are among them (found, not rerun)


def _crossing(values, tpot, slo: float) -> float:
    """Where p99 TPOT, linear between grid values, reaches the SLO (the grid must bracket it)."""
    values, tpot = np.asarray(values, float), np.asarray(tpot, float)
    above = np.flatnonzero(tpot > slo)
    assert len(above) and above[0] > 0 and (tpot[above[0]:] > slo).all(), (values, tpot, slo)
    i = above[0]
    return values[i - 1] + (slo - tpot[i - 1]) / (tpot[i] - tpot[i - 1]) * (values[i] - values[i - 1])


@needs_ns3
def test_find_max_rate_within_slo_matches_a_fine_grid(tmp_path):
    from fabric import fmt

    _write(tmp_path / "costs.yaml", {"slo": {"tpot_p99_s": TPOT_SLO_S}})
    find = _sweep_file(tmp_path, "find", costs="costs.yaml", grid={MODE: ["ecmp", "spray"]},
                       find={"max_rate_within_slo": {"key": TOKENS, "range": [LOW, HIGH], "steps": STEPS}})
    out = tmp_path / "out"
    _sweep(find, out)
    report = json.loads((out / "find.json").read_text())
    md = (out / "sweep.md").read_text()
    probes = pd.read_parquet(out / "sweep.parquet")
    assert (probes["role"] == "find").all() and (probes["status"] == "ok").all()
    assert report["directive"] == "max_rate_within_slo"
    searches = {s["values"][MODE]: s for s in report["searches"]}
    assert sorted(searches) == ["ecmp", "spray"]

    # The same key on a fine grid, same engine, same cost file, into the same DIR: the probes the
    # grid shares with the searches are found there, not run again.
    grid = _sweep_file(tmp_path, "grid", costs="costs.yaml", grid={MODE: ["ecmp", "spray"], TOKENS: GRID})
    _sweep(grid, out)
    frame = pd.read_parquet(out / "sweep.parquet")
    assert len(frame) == 2 * len(GRID) and (frame["status"] == "ok").all()
    assert set(frame.loc[frame["cached"], "point"]) == set(frame["point"]) & set(probes["point"])
    assert (frame["tpot_slo_s"] == TPOT_SLO_S).all() and (probes["tpot_slo_s"] == TPOT_SLO_S).all()

    section = md.split("## Highest rate within the SLOs", 1)[1].split("\n## ", 1)[0]
    found = {}
    for mode, s in searches.items():
        rows = frame[frame[MODE] == mode].sort_values(TOKENS)
        assert rows["tpot_p99_s"].is_monotonic_increasing
        crossing = _crossing(rows[TOKENS], rows["tpot_p99_s"], TPOT_SLO_S)
        found[mode] = s["found"]
        assert s["found"] is not None and "between" in s["note"], s
        assert abs(s["found"] - crossing) <= 0.05 * crossing, (mode, s["found"], crossing, s["probes"])
        # The bisection's bracket: the value found met the SLO, the next probe above it missed, 8 apart.
        met = sorted(float(v) for v, ok in s["probes"].items() if ok)
        missed = sorted(float(v) for v, ok in s["probes"].items() if not ok)
        assert met[-1] == s["found"] and min(v for v in missed if v > s["found"]) == s["found"] + 8
        assert len(s["probes"]) == 2 + STEPS
        # η and CPMT at the value found, per design: those of the probe run there.
        at = probes.set_index("point").loc[s["point"]]
        assert at[TOKENS] == s["found"] and at["tpot_p99_s"] <= TPOT_SLO_S
        assert s["cpmt_total_usd_per_mtok"] == pytest.approx(at["cpmt_total_usd_per_mtok"])
        assert s["eta_combined"] == pytest.approx(at["eta_combined"])
        assert math.isfinite(s["cpmt_total_usd_per_mtok"]) and s["cpmt_total_usd_per_mtok"] > 0
        line = next(line for line in section.splitlines() if line.startswith(f"| {MODE}={mode} |"))
        assert fmt.figure(s["found"]) in line and fmt.usd(s["cpmt_total_usd_per_mtok"], 4) in line
        assert fmt.ratio(s["eta_combined"]) in line
    # Spraying carries the cross-leaf hops at the NIC rate, ECMP at one 200G link's: a larger batch
    # within the same SLO, and a lower CPMT there (ECMP's exposed communication derates η).
    assert found["spray"] > found["ecmp"]
    assert searches["spray"]["cpmt_total_usd_per_mtok"] < searches["ecmp"]["cpmt_total_usd_per_mtok"]


@pytest.mark.parametrize("local_cluster", [False, True], ids=["synchronous", "dask"])
def test_two_searches_that_need_the_same_probe_run_it_once(tmp_path, local_cluster):
    """The grid names the searched key by index, find by the pattern's name: each grid point's value is
    overwritten by every probe, so both searches need the same runs. Each runs once and feeds both
    (the Dask executor failed with KeyError on the second submission of a key, and the synchronous
    one ran the probe twice). Fake engine: a synthetic run directory (tests/unit/test_sweep.py)."""
    from fabric.sweep import load_sweep, plan_sweep, run_sweep, write_sweep_results
    from fabric.sweep.executor import DaskExecutor, SynchronousExecutor
    from tests.unit import test_sweep as fake

    costs = _write(tmp_path / "costs.yaml", {"slo": {"ttft_p99_s": 0.08}})
    path = fake.write_sweep(tmp_path, {"costs": str(costs),
                                       "grid": {"workload.patterns[0].arrivals.rate_per_s": [20, 40]},
                                       "find": {"max_rate_within_slo": {"key": fake.RATE_KEY, "range": [20, 100],
                                                                        "steps": 3}}})
    plan = plan_sweep(load_sweep(path))
    assert len(plan.searches) == 2
    fake.CALLS.clear()
    try:
        if local_cluster:
            with DaskExecutor.local(workers=2, processes=False, runner=fake.fake_runner) as executor:
                result = run_sweep(plan, tmp_path / "out", executor)
        else:
            result = run_sweep(plan, tmp_path / "out", SynchronousExecutor(fake.fake_runner))
        runs = [c["name"] for c in fake.CALLS]
    finally:
        fake.CALLS.clear()
    assert not result.interrupted and len(runs) == len(set(runs)) == 2 + 3
    assert [r.status for r in result.records] == ["ok"] * 5
    report = json.loads(write_sweep_results(result)["find"].read_text())["searches"]
    threshold = fake.SLO_THRESHOLD["rate"]          # the fake fabric meets the SLO up to this rate
    assert [s["found"] for s in report] == [50.0, 50.0] and 50 <= threshold < 60
    assert report[0]["probes"] == report[1]["probes"] and len(report[0]["probes"]) == 5
