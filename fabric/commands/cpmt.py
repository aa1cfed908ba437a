"""``fabric cpmt``: turn one run directory's measured tails into η, tokens served and CPMT.

The arithmetic lives in :mod:`fabric.economics` and the rendering in :mod:`fabric.report.terminal`;
this module prints a summary, ``--json`` for automation, ``--explain`` step by step with every
input and its source, or ``--sensitivity``: the tornado of CPMT over its inputs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from fabric.economics import cpmt_for_run
from fabric.jsonio import dumps

__all__ = ["cpmt", "to_json"]


def cpmt(run_dir: Path = typer.Argument(..., help="Run directory written by `fabric run`."),
         costs: Optional[Path] = typer.Option(None, "--costs", help="Cost file (YAML) overriding catalog defaults; "
                                              "see costs.example.yaml."),
         as_json: bool = typer.Option(False, "--json", help="Print machine-readable JSON."),
         explain: bool = typer.Option(False, "--explain", help="Show the arithmetic step by step, with inputs."),
         sensitivity: bool = typer.Option(False, "--sensitivity",
                                          help="How far each input (prices, life, overlap, RTO, SLOs, tokens/s, "
                                               "network parts) swings CPMT, widest first."),
         baseline: Optional[Path] = typer.Option(None, "--baseline",
                                                 help="With --sensitivity: a baseline design's run directory; the "
                                                      "tornado is then of CPMT(run) / CPMT(baseline).")) -> None:
    """Fabric derating η and cost per million tokens (ideal vs measured) for one run."""
    from fabric.report import terminal
    if baseline is not None and not sensitivity:
        raise typer.BadParameter("--baseline goes with --sensitivity", param_hint="--baseline")
    if sensitivity:
        from fabric.economics import cpmt_sensitivity
        tornado = cpmt_sensitivity(run_dir, costs, baseline)
        typer.echo(to_json(tornado) if as_json else terminal.sensitivity_table(tornado))
        return
    result = cpmt_for_run(run_dir, costs)
    if as_json:
        typer.echo(to_json(result))
    elif explain:
        typer.echo(terminal.cpmt_explain(result))
    else:
        typer.echo(terminal.cpmt_summary(result))


def to_json(result: dict) -> str:
    return dumps(result).rstrip("\n")
