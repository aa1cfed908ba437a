"""``fabric report``: the comparison report (HTML, Markdown, summary.json) from existing run directories.

Runs are grouped into designs by the design name in their run.json (several runs of one design
are its repeats, ordered by start time); designs keep the order in which their first run was
given, and the first design is the baseline of the break-even line.
"""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from fabric.errors import RunDirError


def designs_from_run_dirs(run_dirs: list[Path], costs=None) -> list:
    """Read run directories and group them into :class:`~fabric.report.summary.DesignRecord`."""
    from fabric.report.summary import DesignRecord, RunRecord, load_run
    from fabric.rundir import read_run_json
    groups: dict[str, list[tuple[dict, Path]]] = {}
    seen = set()
    for rd in run_dirs:
        rd = Path(rd)
        if not rd.is_dir():
            raise RunDirError(f"{rd}: not a directory; give run directories written by `fabric run` or `fabric compare`")
        key = rd.resolve()
        if key in seen:
            continue
        seen.add(key)
        rj = read_run_json(rd)
        for name in ("packets", "messages"):
            if not (rd / f"{name}.parquet").exists():
                raise RunDirError(f"{rd}: {name}.parquet is missing; is this a finished fabric run directory?")
        topo = rj.get("topology") or {}
        name = ((topo.get("facts") or {}).get("name") or (topo.get("spec") or {}).get("name")
                or rj.get("name") or rd.name)
        groups.setdefault(name, []).append((rj, rd))
    designs = []
    for name, runs in groups.items():
        runs.sort(key=lambda x: (x[0].get("t0_ns") or 0, str(x[1])))
        topo = runs[0][0].get("topology") or {}
        d = DesignRecord(name=name, kind=(topo.get("facts") or {}).get("kind") or (topo.get("spec") or {}).get("kind"),
                         topology_path=topo.get("path"), topology_sha256=topo.get("sha256"), facts=topo.get("facts"))
        for i, (rj, rd) in enumerate(runs, start=1):
            d.runs.append(load_run(RunRecord(design=name, repeat=i, run_dir=rd, status="ok", run_json=rj), costs))
        designs.append(d)
    return designs


def summary_from_run_dirs(run_dirs: list[Path], costs: Optional[Path] = None, output_dir: Path | None = None) -> dict:
    from fabric.economics import load_costs
    from fabric.report.commandlines import compare_command, report_command, run_command_from_run_json
    from fabric.report.summary import build_summary, merge_cost_inputs, workload_facts_from_runs
    cost_file = load_costs(costs)
    designs = designs_from_run_dirs(run_dirs, cost_file)
    repeats = max(len(d.runs) for d in designs)
    first = designs[0].runs[0].run_json
    scale = dict(first.get("scale") or {})
    scale["k"] = first.get("scale_k")
    workload = workload_facts_from_runs(designs)
    commands = {
        "compare": compare_command([d.topology_path or d.name for d in designs],
                                   workload.get("path") or "WORKLOAD.yaml", output_dir or "OUT", repeats=repeats,
                                   seed=workload.get("seed"), costs=costs or None),
        "runs": [run_command_from_run_json(r.run_json, r.run_dir) for d in designs for r in d.runs],
        "report": report_command([r.run_dir for d in designs for r in d.runs], "report.html"),
    }
    return build_summary(designs, workload=workload, scale=scale, repeats=repeats,
                         cost_inputs=merge_cost_inputs(designs, costs), cost_source=str(costs) if costs else None,
                         commands=commands)


def report(run_dirs: List[Path] = typer.Argument(..., help="Run directories (from `fabric run` or `fabric compare`)."),
           output: Path = typer.Option(Path("report.html"), "-o", "--output",
                                       help="HTML report to write; report.md and summary.json go next to it."),
           costs: Optional[Path] = typer.Option(None, "--costs", help="Cost file (YAML) overriding catalog defaults."),
           ) -> None:
    """Build the comparison report from existing run directories (grouped by design name)."""
    from fabric.report.render import write_report
    from fabric.report.terminal import print_verdict
    if output.suffix.lower() not in (".html", ".htm"):
        raise RunDirError(f"-o {output}: the report is HTML; give a path ending in .html")
    summary = summary_from_run_dirs(list(run_dirs), costs, output.parent)
    paths = write_report(summary, output)
    print_verdict(summary)
    typer.echo(f"report: {paths['html']} (also {paths['md'].name}, {paths['json'].name})")
