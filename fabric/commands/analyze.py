"""``fabric analyze``: recompute a run's metrics.json and print a per-class summary
(:func:`fabric.report.terminal.metrics_summary`, also what ``fabric run`` prints at the end of a run).
"""

from __future__ import annotations

import json
from pathlib import Path

import typer

from fabric.analysis.run_metrics import write_metrics


def analyze(run_dir: Path = typer.Argument(..., help="Run directory written by `fabric run`."),
            as_json: bool = typer.Option(False, "--json", help="Print metrics.json instead of the table.")) -> None:
    """Recompute metrics.json for a run directory and summarise it per traffic class."""
    metrics = write_metrics(run_dir)
    if as_json:
        typer.echo(json.dumps(metrics, indent=2, sort_keys=True))
    else:
        from fabric.report.terminal import metrics_summary
        typer.echo(metrics_summary(metrics))
