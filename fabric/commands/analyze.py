"""``fabric analyze``: recompute a run's metrics.json and print a per-class summary.

:func:`print_summary` is also what ``fabric run`` prints at the end of a run.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer

from fabric.analysis.run_metrics import write_metrics


def format_number(v, fmt: str = "{:.1f}") -> str:
    if v is None:
        return "-"
    if v == "inf":
        return "inf"
    return fmt.format(float(v))


def print_summary(metrics: dict) -> None:
    """Print a short table per traffic class: OWD p50/p99/p99.9 (loss-aware), loss, MCT p99,
    then spine/NCF imbalance and the fidelity verdict with the signals that tripped."""
    k = (metrics.get("scale") or {}).get("k")
    dilation = (metrics.get("scale") or {}).get("dilation", 1.0) or 1.0
    slow = f", time dilation {dilation:g} (the fabric ran {dilation:g}x slower; times shown undilated)" if dilation > 1 else ""
    typer.echo(f"scale k = {k:g} (bytes and rates in real units; times unscaled){slow}" if k else "scale k = ?")
    head = f"{'class':<14}{'packets':>10}{'OWD p50 us':>12}{'p99 us':>10}{'p99.9 us':>10}" \
           f"{'p99-p50':>10}{'loss':>9}{'MCT p99 ms':>12}{'recovered':>10}"
    typer.echo(head)
    for name, c in sorted((metrics.get("classes") or {}).items()):
        o = c.get("owd_us", {})
        p50, p99 = o.get("p50"), o.get("p99")
        spread = "inf" if "inf" in (p50, p99) else (None if p50 is None or p99 is None else float(p99) - float(p50))
        loss = c.get("loss_ratio")
        typer.echo(f"{name:<14}{o.get('n', 0):>10}{format_number(p50):>12}{format_number(p99):>10}{format_number(o.get('p99_9')):>10}"
                   f"{format_number(spread):>10}{format_number(None if loss is None else loss * 100, '{:.3f}%'):>9}"
                   f"{format_number((c.get('mct_ms') or {}).get('p99'), '{:.3f}'):>12}"
                   f"{(c.get('messages') or {}).get('recovered', 0):>10}")
    si = metrics.get("spine_imbalance") or {}
    if si.get("cores"):
        typer.echo(f"core load imbalance (max/mean over {si['cores']} spines/NCFs): {format_number(si.get('max_over_mean'), '{:.3f}')}")
    fid = metrics.get("fidelity") or {}
    verdict = fid.get("verdict", "?")
    flagged = fid.get("failing", []) + fid.get("warning", [])
    typer.echo(f"fidelity: {verdict}" + (f" ({', '.join(flagged)})" if flagged else ""))
    for reason in fid.get("reasons", []):
        typer.echo(f"  {reason}")


def analyze(run_dir: Path = typer.Argument(..., help="Run directory written by `fabric run`."),
            as_json: bool = typer.Option(False, "--json", help="Print metrics.json instead of the table.")) -> None:
    """Recompute metrics.json for a run directory and summarise it per traffic class."""
    metrics = write_metrics(run_dir)
    if as_json:
        typer.echo(json.dumps(metrics, indent=2, sort_keys=True))
    else:
        print_summary(metrics)
