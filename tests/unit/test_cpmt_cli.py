"""`fabric cpmt` through typer's CliRunner: summary, --json keys, --explain traceability, bad cost files."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import typer
import yaml
from typer.testing import CliRunner

from fabric.commands.cpmt import cpmt
from fabric.errors import CostError

_spec = importlib.util.spec_from_file_location("_econ_fixtures", Path(__file__).with_name("test_economics.py"))
fx = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fx)

runner = CliRunner()


def _app() -> typer.Typer:
    app = typer.Typer()
    app.command("cpmt")(cpmt)

    @app.command("noop")  # a second command keeps "cpmt" a sub-command, as in fabric.cli
    def _noop() -> None:
        pass
    return app


def invoke(*args):
    return runner.invoke(_app(), ["cpmt", *map(str, args)])


def test_summary(tmp_path):
    run = fx.make_run(tmp_path / "run", moe_tail_s=0.001)
    result = invoke(run)
    assert result.exit_code == 0, result.output
    assert "CPMT total" in result.output and "/Mtok" in result.output
    assert "set by moe" in result.output
    assert "break-even" in result.output


def test_json_keys(tmp_path):
    run = fx.make_run(tmp_path / "run", kv_tail_s=lambda r: 2.0 if r < 4 else 0.0)
    result = invoke(run, "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    for key in ("eta", "cpmt_total_usd_per_mtok", "cpmt_output_usd_per_mtok", "cost_per_hour_usd", "network_share",
                "cpmt_ideal", "tokens_per_s", "cost", "break_even", "inputs", "patterns", "warnings"):
        assert key in data, key
    eta = data["eta"]
    assert set(eta) >= {"kv", "moe", "tp", "combined", "set_by"}
    assert eta["kv"] == pytest.approx(16 / 20)
    assert eta["tp"] is None
    assert eta["set_by"] == "kv"
    assert data["cpmt_total_usd_per_mtok"] == pytest.approx(data["cpmt_ideal"]["total_usd_per_mtok"] / eta["combined"])
    assert data["cpmt_output_usd_per_mtok"] > data["cpmt_total_usd_per_mtok"]
    assert 0 < data["network_share"] < 1


def test_explain_traces_difference_to_tails(tmp_path):
    run = fx.make_run(tmp_path / "run", kv_tail_s=lambda r: 2.0 if r < 4 else 0.0)
    result = invoke(run, "--explain")
    assert result.exit_code == 0, result.output
    out = result.output
    for step in ("Step 1", "Step 2", "Step 3", "Step 4", "Step 5", "Step 6", "Inputs"):
        assert step in out, step
    assert "η_KV = 0.8000" in out
    assert "requests meeting the SLO: measured 80.0%" in out
    # the measured KV tail appears next to the ideal one
    assert "KV completion p50/p99" in out and "2001." in out
    assert "serving.total_tokens_per_s_per_accelerator" in out and "DeepSeek" in out


def test_costs_option_changes_price(tmp_path):
    run = fx.make_run(tmp_path / "run")
    base = json.loads(invoke(run, "--json").output)
    costs = tmp_path / "c.yaml"
    costs.write_text(yaml.safe_dump({"accelerator": {"tier": "rental"}}))
    dear = json.loads(invoke(run, "--costs", costs, "--json").output)
    acc = base["cost"]["accelerators"]
    share = next(i["value"] for i in base["inputs"] if i["name"] == "accelerator.tier_network_share")
    assert dear["cost_per_hour_usd"] - base["cost_per_hour_usd"] == pytest.approx(acc * (1.78 - 1.55) * (1 - share))


@pytest.mark.parametrize("data, key", [
    ({"accelerator": {"price_per_hour_usd": -2}}, "accelerator.price_per_hour_usd"),
    ({"accelerator": {"name": "NotAGPU"}}, "accelerator.name"),
    ({"network": {"parts": {"nics": [{"speed": "400G", "power_w": 20}]}}}, "network.parts.nics[0].price_usd"),
    ({"network": {"lifetime": 3}}, "network.lifetime"),
])
def test_bad_cost_file_refused_with_one_line(tmp_path, data, key):
    run = fx.make_run(tmp_path / "run")
    costs = tmp_path / "bad.yaml"
    costs.write_text(yaml.safe_dump(data))
    result = invoke(run, "--costs", costs)
    assert result.exit_code != 0
    assert isinstance(result.exception, CostError)
    line = f"error: {result.exception}"          # what fabric.cli.main prints
    assert "\n" not in line
    assert str(costs) in line and key in line


def test_wired_into_fabric_cli(tmp_path, capsys):
    """Once `cpmt` is registered in fabric.cli, errors come out as one line with exit code 1."""
    from fabric import cli
    names = {c.name for c in cli.app.registered_commands}
    if "cpmt" not in names:
        pytest.skip("fabric.cli does not register `cpmt` yet")
    run = fx.make_run(tmp_path / "run")
    costs = tmp_path / "bad.yaml"
    costs.write_text("facility: {pue: 0.5}\n")
    with pytest.raises(SystemExit) as info:
        cli.main(["cpmt", str(run), "--costs", str(costs)])
    assert info.value.code == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "facility.pue" in err


def test_sensitivity_prints_the_tornado_widest_first(tmp_path):
    run = fx.make_run(tmp_path / "run", moe_tail_s=0.001)
    res = invoke(run, "--sensitivity")
    assert res.exit_code == 0, res.output
    rows = [line for line in res.output.splitlines() if "±" in line or " to " in line]
    assert any(line.lstrip().startswith("accelerator price per hour") for line in rows)
    data = json.loads(invoke(run, "--sensitivity", "--json").output)
    assert data["figure"] == "cpmt_total_usd_per_mtok" and len(data["swings"]) >= 10
    assert invoke(run, "--baseline", str(run)).exit_code != 0   # --baseline needs --sensitivity


def test_energy_in_summary_explain_and_json(tmp_path):
    run = fx.make_run(tmp_path / "run")
    costs = tmp_path / "c.yaml"
    costs.write_text(yaml.safe_dump({"accelerator": {"power_w": 1000, "system_power_ratio": 1.5},
                                     "facility": {"pue": 1.5}, "network": {"parts": fx.FREE_NETWORK}}))
    data = json.loads(invoke(run, "--costs", costs, "--json").output)
    en = data["energy"]
    assert en["facility_power_kw"] == pytest.approx(36.0)
    assert set(en) >= {"tokens_per_kwh", "tokens_per_s_per_mw", "facility_power_kw"}
    kwh = f"{en['tokens_per_kwh']:,.0f}"
    summary = invoke(run, "--costs", costs).output
    line = next(x for x in summary.splitlines() if x.strip().startswith("energy"))
    assert f"{kwh} tokens/kWh" in line and "tokens/s per MW" in line and "36.0 kW at PUE 1.5" in line
    explain = invoke(run, "--costs", costs, "--explain").output
    assert "Step 7" in explain
    assert "board 1000 W × all-in ratio 1.5 = 1,500.0 W per accelerator" in explain
    assert "accelerators 24.00 kW + network 0.00 kW = 24.00 kW; × PUE 1.5 = facility 36.00 kW" in explain
    assert f"= {kwh}" in explain
