"""One completion model: metrics.json, `fabric cpmt --json` and the report agree on every figure they
share for the same run directory (issue: completion was defined twice, with two ideals)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from fabric import economics as E
from fabric.analysis.run_metrics import write_metrics
from fabric.cli import app
from fabric.commands.report import summary_from_run_dirs
from fabric.economics.derating import nearest_rank
from tests.unit.test_economics import KV_SHARD_BYTES, PAYLOAD, make_run


@pytest.fixture
def run(tmp_path):
    n = int(np.ceil((KV_SHARD_BYTES // 1000) / PAYLOAD))
    d = make_run(tmp_path / "run", kv_tail_s=lambda r: 0.002 * (r % 3), moe_tail_s=0.0004,
                 lost={1: n - 4, 6: n - 4})
    write_metrics(d)
    return d


def test_message_completion_is_the_same_in_metrics_and_economics(run):
    metrics = json.loads((run / "metrics.json").read_text())
    frame = E.message_times(run)
    for kind, cls in metrics["classes"].items():
        mct_ms = ((frame["measured_done_s"] - frame["t_start_s"])[frame["kind"] == kind] * 1e3).to_numpy()
        for level, q in (("p50", 50), ("p99", 99)):
            assert cls["mct_ms"][level] == pytest.approx(nearest_rank(mct_ms, q), rel=1e-9), (kind, level)
        ideal = ((frame["ideal_done_s"] - frame["t_start_s"])[frame["kind"] == kind]).to_numpy()
        slowdown = (mct_ms / 1e3) / ideal
        assert cls["slowdown"]["p99"] == pytest.approx(nearest_rank(slowdown, 99), rel=1e-6), kind


def test_cpmt_json_and_the_report_carry_the_same_eta_and_cpmt(run):
    out = CliRunner().invoke(app, ["cpmt", str(run), "--json"])
    assert out.exit_code == 0, out.output
    cpmt = json.loads(out.output)
    summary = summary_from_run_dirs([run])
    figures = summary["designs"][0]["figures"]
    assert figures["eta_combined"] == pytest.approx(cpmt["eta"]["combined"], rel=1e-12)
    assert figures["eta_kv"] == pytest.approx(cpmt["eta"]["kv"], rel=1e-12)
    assert figures["eta_moe"] == pytest.approx(cpmt["eta"]["moe"], rel=1e-12)
    assert figures["cpmt_total_usd_per_mtok"] == pytest.approx(cpmt["cpmt_total_usd_per_mtok"], rel=1e-12)
    metrics = json.loads((run / "metrics.json").read_text())
    for kind, cls in summary["designs"][0]["classes"].items():
        assert cls["mct_p99_ms"] == pytest.approx(metrics["classes"][kind]["mct_ms"]["p99"], rel=1e-12), kind
