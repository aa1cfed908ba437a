"""``fabric pcap``: per-flow metrics from a packet capture holding our probe packets.

Reads ``RUN/captures/<link>.pcap`` (written by ``fabric run --capture LINK``) or any pcap/pcapng
with probe packets to UDP port 47000; see :mod:`fabric.analysis.pcap` for what each figure means.
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Optional

import typer

from fabric import fmt
from fabric.analysis.pcap import analyze_capture, dumps, find_run_dir
from fabric.units import UnitError, parse_duration_ns


class Engine(str, Enum):
    auto = "auto"
    scapy = "scapy"


def print_table(result: dict) -> None:
    """Capture facts, then one line per (src, dst) flow."""
    cap = result["capture"]
    skipped = {k: v for k, v in cap["skipped"].items() if v}
    res = cap.get("timestamp_resolution_ns")
    typer.echo(f"{cap['file']}: {cap['format']}, {cap['frames']} frames, {cap['probe_copies']} probe packets"
               + (f", skipped {', '.join(f'{k} {v}' for k, v in skipped.items())}" if skipped else "")
               + (f"; timestamps {res} ns resolution" if res else ""))
    run = result.get("run")
    if run:
        typer.echo(f"run directory {run['dir']}: host names and schedule msg_ids; "
                   f"{run['noise_probe_copies']} noise-probe packets left out")
    tmax = result.get("tmax_ns")
    typer.echo("OWD = sender tx -> this capture point (capture timestamp), not to the receiver; "
               "loss = not seen here; Tmax " + (f"{tmax / 1e6:g} ms" if tmax else "none (end of capture)"))
    flows = result.get("flows") or {}
    if not flows:
        typer.echo("no probe packets in this capture")
        return
    head = (f"{'flow':<34}{'packets':>9}{'OWD p50 us':>12}{'p99 us':>10}{'p99.9 us':>10}{'PDV p99':>9}"
            f"{'|IPDV| p99':>11}{'J(3550) us':>11}{'loss':>9}{'reord':>7}{'dups':>6}")
    typer.echo(head)
    for name, f in flows.items():
        o, loss = f.get("owd_us", {}), f.get("loss", {})
        ratio = f.get("loss_ratio")
        typer.echo(f"{name:<34}{f['packets']:>9}{_us(o.get('p50')):>12}{_us(o.get('p99')):>10}"
                   f"{_us(o.get('p99_9')):>10}{_us((f.get('pdv_us') or {}).get('p99_minus_min')):>9}"
                   f"{_us((f.get('ipdv_us') or {}).get('abs_p99')):>11}{_us(f.get('rfc3550_j_us')):>11}"
                   f"{fmt.percent(ratio, 3, none='-'):>9}"
                   f"{(f.get('reorder') or {}).get('n_reordered', 0):>7}{loss.get('duplicates', 0):>6}")
    typer.echo("OWD percentiles count lost packets as infinitely late (RFC 7679); J is RFC 3550's smoothed "
               "jitter, a compatibility figure (hides tails)")


def _us(v) -> str:
    return fmt.fixed(v, 1, none="-")


def pcap(file: Path = typer.Argument(..., exists=True, dir_okay=False, readable=True,
                                     help="pcap or pcapng capture, e.g. RUN/captures/h0-leaf0.pcap."),
         as_json: bool = typer.Option(False, "--json", help="Print the analysis as JSON instead of the table."),
         tmax: Optional[str] = typer.Option(None, "--tmax", help="Count packets later than this after their send "
                                            "as lost, e.g. 1s or 50ms (default: none, the end of the capture)."),
         run_dir: Optional[Path] = typer.Option(None, "--run", exists=True, file_okay=False,
                                                help="Run directory to name hosts and msg_ids (default: the "
                                                     "capture's own run directory if it sits in RUN/captures/)."),
         raw: bool = typer.Option(False, "--raw", help="Ignore any run directory: IP addresses and wire ids."),
         engine: Engine = typer.Option(Engine.auto, "--engine", help="auto: fast struct decoding where the link "
                                       "type allows; scapy: dissect every frame with scapy (slow).")) -> None:
    """Per-flow OWD, PDV, IPDV, RFC 3550 J, loss and reordering from the probe packets in a capture."""
    tmax_ns = None
    if tmax is not None:
        try:
            tmax_ns = parse_duration_ns(tmax)
        except UnitError as exc:
            raise typer.BadParameter(str(exc), param_hint="--tmax") from None
    if raw:
        run_dir = None
    elif run_dir is None:
        run_dir = find_run_dir(file)
    result = analyze_capture(file, tmax_ns=tmax_ns, run_dir=run_dir, engine=engine.value)
    if as_json:
        typer.echo(dumps(result))
    else:
        print_table(result)
