"""``fabric compare`` without root: every design is validated before anything runs, and (with the
emulator replaced by a writer of synthetic run directories) the same k goes to every design, a
failing design is reported with its reason while the others complete, and Ctrl-C keeps what
finished, writes the report and exits 130."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

REPO = Path(__file__).resolve().parents[2]
ECMP = REPO / "topologies" / "leaf-spine-ecmp.yaml"
SPRAY = REPO / "topologies" / "leaf-spine-spray.yaml"
SCHED = REPO / "topologies" / "scheduled-fabric.yaml"
PROFILE = REPO / "tests" / "emulation" / "profiles" / "small-mixed.yaml"


def cli_app() -> typer.Typer:
    """The fabric CLI with compare/report: the real app once fabric/cli.py wires them, else the same
    group class (FabricError → one line, exit 1) with just these two commands."""
    from fabric.cli import _FabricGroup, app
    if {c.name for c in app.registered_commands} >= {"compare", "report"}:
        return app
    from fabric.commands import compare, report
    test_app = typer.Typer(cls=_FabricGroup, add_completion=False, pretty_exceptions_enable=False)
    test_app.command("compare")(compare.compare)
    test_app.command("report")(report.report)
    return test_app


@pytest.fixture
def no_emulation(monkeypatch):
    """Fail the test if anything tries to emulate."""
    import fabric.emu.runner as runner

    def boom(*a, **k):
        raise AssertionError("the emulator ran although validation should have refused the input")
    monkeypatch.setattr(runner, "run", boom)


def _bad_design(tmp_path: Path) -> Path:
    bad = tmp_path / "bad-fabric.yaml"
    bad.write_text(ECMP.read_text().replace("spines: 4", "spines: -2"))
    return bad


def test_an_invalid_design_among_several_is_refused_before_anything_runs(tmp_path, no_emulation):
    bad = _bad_design(tmp_path)
    out = tmp_path / "out"
    res = CliRunner().invoke(cli_app(), ["compare", str(ECMP), str(bad), str(SPRAY), "--traffic", str(PROFILE),
                                         "--out", str(out)])
    assert res.exit_code == 1, res.output
    lines = res.output.strip().splitlines()
    assert len(lines) == 1, res.output
    assert lines[0].startswith("error: ") and str(bad) in lines[0] and "spines" in lines[0]
    assert not out.exists(), "nothing may be created before every design is valid"


def test_a_missing_design_file_is_named(tmp_path, no_emulation):
    res = CliRunner().invoke(cli_app(), ["compare", str(ECMP), str(tmp_path / "nope.yaml"), "--traffic",
                                         str(PROFILE), "--out", str(tmp_path / "o")])
    assert res.exit_code == 1
    assert res.output.strip() == f"error: {tmp_path / 'nope.yaml'}: file not found"


def test_a_bad_workload_or_cost_file_is_refused_up_front(tmp_path, no_emulation):
    res = CliRunner().invoke(cli_app(), ["compare", str(ECMP), "--traffic", str(tmp_path / "w.yaml"),
                                         "--out", str(tmp_path / "o")])
    assert res.exit_code == 1 and "w.yaml" in res.output
    costs = tmp_path / "costs.yaml"
    costs.write_text("accelerator:\n  tier: platinum\n")
    res = CliRunner().invoke(cli_app(), ["compare", str(ECMP), "--traffic", str(PROFILE), "--costs", str(costs),
                                         "--out", str(tmp_path / "o")])
    assert res.exit_code == 1 and "costs.yaml" in res.output and "tier" in res.output
    assert not (tmp_path / "o").exists()


def test_repeat_below_one_is_a_usage_error(tmp_path, no_emulation):
    res = CliRunner().invoke(cli_app(), ["compare", str(ECMP), "--traffic", str(PROFILE), "--out",
                                         str(tmp_path / "o"), "--repeat", "0"])
    assert res.exit_code == 2


def test_plan_uses_one_k_for_all_designs():
    from fabric.compare import plan_compare
    plan = plan_compare([ECMP, SCHED], PROFILE, None, None)
    assert plan.k == max(p.scale.k for p in plan.designs)
    assert [p.name for p in plan.designs] == ["leaf-spine-ecmp", "scheduled-fabric"]
    assert plan.seed == 3


@pytest.fixture
def fake_emulator(monkeypatch):
    """Replace the emulator (and the root check) with a synthetic run-directory writer.

    ``calls`` records (design, k); ``behaviour[design]`` may be an exception to raise instead.
    """
    import fabric.commands.compare as cmp
    import fabric.emu.runner as runner
    from tests.unit.test_report import synthetic_run

    calls, behaviour = [], {}

    def fake_run(spec, g, schedule, out_dir, options, progress=None):
        calls.append((spec.name, options.scale, options.seed, options.hash_seed))
        if progress:
            progress("replay", 0.5)
        exc = behaviour.get(spec.name)
        if exc is not None:
            raise exc
        return synthetic_run(spec, g, schedule, out_dir, k=options.scale, seed=options.seed,
                             hash_seed=options.hash_seed, name=options.name)

    monkeypatch.setattr(runner, "run", fake_run)
    monkeypatch.setattr(cmp, "_check_environment", lambda: None)
    return calls, behaviour


def test_a_failing_design_is_reported_and_the_others_complete(tmp_path, fake_emulator):
    from fabric.errors import EmulationError
    calls, behaviour = fake_emulator
    behaviour["leaf-spine-spray"] = EmulationError("fabric-receiver died (exit code 1) during the run")
    out = tmp_path / "cmp"
    res = CliRunner().invoke(cli_app(), ["compare", str(ECMP), str(SPRAY), str(SCHED), "--traffic", str(PROFILE),
                                         "--out", str(out), "--quiet"])
    assert res.exit_code == 0, res.output
    assert [c[0] for c in calls] == ["leaf-spine-ecmp", "leaf-spine-spray", "scheduled-fabric"]
    assert len({c[1] for c in calls}) == 1, "every design must run at the same k"
    assert {c[2] for c in calls} == {3}, "every design must run with the same workload seed"
    s = json.loads((out / "summary.json").read_text())
    status = {d["name"]: d["status"] for d in s["designs"]}
    assert status == {"leaf-spine-ecmp": "ok", "leaf-spine-spray": "failed", "scheduled-fabric": "ok"}
    spray = s["designs"][1]
    assert spray["reason"] == "fabric-receiver died (exit code 1) during the run"
    assert (out / "runs" / "leaf-spine-ecmp-r1" / "metrics.json").exists()
    assert (out / "report.html").exists() and (out / "report.md").exists()
    assert "fabric-receiver died" in (out / "report.html").read_text()
    assert "Verdict per design" in res.output and "report:" in res.output
    assert s["commands"]["compare"].startswith("fabric compare ")


def test_repeats_run_round_robin_and_refuse_an_used_out(tmp_path, fake_emulator):
    calls, _ = fake_emulator
    out = tmp_path / "cmp"
    res = CliRunner().invoke(cli_app(), ["compare", str(ECMP), str(SCHED), "--traffic", str(PROFILE), "--out",
                                         str(out), "--repeat", "2", "--seed", "5", "--quiet"])
    assert res.exit_code == 0, res.output
    assert [c[0] for c in calls] == ["leaf-spine-ecmp", "scheduled-fabric"] * 2
    s = json.loads((out / "summary.json").read_text())
    assert s["repeats"] == 2 and s["workload"]["seed"] == 5
    assert sorted(p.name for p in (out / "runs").iterdir()) == [
        "leaf-spine-ecmp-r1", "leaf-spine-ecmp-r2", "scheduled-fabric-r1", "scheduled-fabric-r2"]
    assert isinstance(s["designs"][0]["spread_rsd"]["eta_combined"], float)
    # A second compare into the same --out is refused before anything runs.
    calls.clear()
    res = CliRunner().invoke(cli_app(), ["compare", str(ECMP), "--traffic", str(PROFILE), "--out", str(out)])
    assert res.exit_code == 1 and "already holds a run" in res.output and calls == []


def test_ctrl_c_keeps_finished_runs_writes_the_report_and_exits_130(tmp_path, fake_emulator):
    calls, behaviour = fake_emulator
    behaviour["leaf-spine-spray"] = KeyboardInterrupt()
    out = tmp_path / "cmp"
    res = CliRunner().invoke(cli_app(), ["compare", str(ECMP), str(SPRAY), str(SCHED), "--traffic", str(PROFILE),
                                         "--out", str(out), "--quiet"])
    assert res.exit_code == 130, res.output
    assert [c[0] for c in calls] == ["leaf-spine-ecmp", "leaf-spine-spray"]
    s = json.loads((out / "summary.json").read_text())
    assert s["status"] == "interrupted"
    assert [d["status"] for d in s["designs"]] == ["ok", "interrupted", "not_run"]
    assert (out / "runs" / "leaf-spine-ecmp-r1" / "metrics.json").exists()
    html = (out / "report.html").read_text()
    assert "Incomplete comparison" in html and "leaf-spine-ecmp" in html


def test_the_service_runs_any_runner_and_reports_events(tmp_path):
    """fabric.compare without the CLI: the runner and its options type are plugged in, events arrive in
    run order, a failing design is recorded with its reason, and nothing is printed."""
    from dataclasses import dataclass, field

    from fabric.compare import CompareEvents, plan_compare, run_compare, write_comparison_report
    from fabric.errors import EmulationError
    from tests.unit.test_report import synthetic_run

    @dataclass
    class Options:  # another engine's options: no time dilation
        seed: int
        scale: float
        hash_seed: int
        budget_pps: int | None
        name: str
        extra: dict = field(default_factory=dict)

    def runner(spec, g, schedule, out_dir, options, progress):
        progress("replay", 1.0)
        if spec.name == "leaf-spine-spray":
            raise EmulationError("the engine gave up")
        assert options.extra["workload"]["messages"] == len(schedule)
        return synthetic_run(spec, g, schedule, out_dir, k=options.scale, seed=options.seed,
                             hash_seed=options.hash_seed, name=options.name)

    class Recorder(CompareEvents):
        def __init__(self):
            self.seen = []

        def run_started(self, run):
            self.seen.append(("start", run.label))

        def run_stage(self, run, stage, fraction):
            self.seen.append((stage, run.design.name))

        def run_finished(self, run):
            self.seen.append((run.record.status, run.design.name))

    plan = plan_compare([ECMP, SPRAY], PROFILE, None, None)
    events = Recorder()
    result = run_compare(plan, tmp_path / "out", repeats=1, runner=runner, options_type=Options, events=events)
    assert events.seen == [("start", "leaf-spine-ecmp r1 (1/2)"), ("replay", "leaf-spine-ecmp"),
                           ("ok", "leaf-spine-ecmp"), ("start", "leaf-spine-spray r1 (2/2)"),
                           ("replay", "leaf-spine-spray"), ("failed", "leaf-spine-spray")]
    assert result.exit_code == 0 and result.finished == 1 and not result.interrupted
    assert [d["status"] for d in result.summary["designs"]] == ["ok", "failed"]
    assert result.summary["designs"][1]["reason"] == "the engine gave up"
    assert len(result.summary["commands"]["runs"]) == 2
    assert all(line.startswith("fabric run --topo ") for line in result.summary["commands"]["runs"])
    paths = write_comparison_report(result)
    assert paths["json"].exists() and paths["html"].exists()


def test_a_run_line_is_the_same_from_the_plan_and_from_run_json(tmp_path, fake_emulator):
    """compare writes each run's reproducing line from its plan, report from run.json: one function, one line."""
    from fabric.commands.report import summary_from_run_dirs
    out = tmp_path / "cmp"
    res = CliRunner().invoke(cli_app(), ["compare", str(ECMP), str(SCHED), "--traffic", str(PROFILE), "--out",
                                         str(out), "--quiet"])
    assert res.exit_code == 0, res.output
    planned = json.loads((out / "summary.json").read_text())["commands"]["runs"]
    rebuilt = summary_from_run_dirs(sorted((out / "runs").iterdir()), None, out)["commands"]["runs"]

    def without_dilation(line):  # the fake emulator records D = 1 whatever it was asked for
        return line.split(" --dilation ")[0]
    assert len(planned) == 2 and [without_dilation(x) for x in planned] == [without_dilation(x) for x in rebuilt]


def test_no_command_module_imports_another():
    """Commands parse options, call services and render; what two commands share lives below them."""
    import ast
    commands = REPO / "fabric" / "commands"
    for path in commands.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                continue
            assert not any(n.startswith("fabric.commands.") for n in names), f"{path.name} imports {names}"
