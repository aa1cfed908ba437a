"""``fabric traffic``: inspect workload profiles and turn them into schedules.

``show`` prints what a profile puts on a fabric (messages and bytes per class, offered load per
host and in total against the hosts' NIC capacity, peak fan-in per destination, an edge-to-edge
traffic matrix, and the generator's notes); ``gen`` writes the schedule Parquet file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from fabric import fmt
from fabric.schedule import write_schedule
from fabric.specs import load_fabric_spec
from fabric.topology import build_fabric
from fabric.units import format_bytes, format_rate
from fabric.workloads import generate, load_workload, summarize

DEFAULT_TOPO = Path("topologies/leaf-spine-ecmp.yaml")

app = typer.Typer(no_args_is_help=True, help="Inspect workload profiles and generate schedules.")

_FILE = typer.Argument(..., help="Workload profile YAML (traffic/*.yaml).")
_TOPO = typer.Option(DEFAULT_TOPO, "--topo", "-t", help="Fabric design YAML the profile runs on.")
_SEED = typer.Option(None, "--seed", min=0, help="Seed overriding the profile's.")


def _generate(file: Path, topo: Path, seed: Optional[int]):
    graph = build_fabric(load_fabric_spec(topo))
    return generate(load_workload(file), graph, seed), graph


@app.command("show")
def show(file: Path = _FILE, topo: Path = _TOPO, seed: Optional[int] = _SEED,
         as_json: bool = typer.Option(False, "--json", help="Print machine-readable JSON.")) -> None:
    """Summarize the schedule a profile generates on a fabric design."""
    gen, graph = _generate(file, topo, seed)
    s = summarize(gen, graph)
    if as_json:
        typer.echo(json.dumps(s, indent=2, sort_keys=True))
        return
    wl = gen.workload
    typer.echo(f"{wl.name} on {s['fabric']} (seed {s['seed']}): {wl.description}")
    typer.echo(f"  duration {s['duration_s']:g} s, {fmt.count(s['messages'])} messages, {format_bytes(s['bytes'])}, "
               f"offered {format_rate(s['offered_load_bps'])}bit/s = {fmt.percent(s['offered_load_share'], 1)} of "
               f"{format_rate(s['host_capacity_bps'])}bit/s host capacity")
    typer.echo("  per class")
    typer.echo(f"    {'kind':<13}{'messages':>9}{'groups':>8}{'bytes':>10}{'offered':>11}  message size")
    for kind, c in s["classes"].items():
        typer.echo(f"    {kind:<13}{fmt.count(c['messages']):>9}{fmt.count(c['groups']):>8}{format_bytes(c['bytes']):>10}"
                   f"{format_rate(c['offered_load_bps']) + 'b/s':>11}  "
                   f"{format_bytes(c['min_message_bytes'])}..{format_bytes(c['max_message_bytes'])}")
    typer.echo("  per host (average over the duration; fan-in = most senders at once on an ideal fabric)")
    typer.echo(f"    {'host':<6}{'edge':<8}{'group':<10}{'tx':>9}{'rx':>9}{'tx %NIC':>9}{'rx %NIC':>9}{'fan-in':>8}")
    for host, h in s["hosts"].items():
        typer.echo(f"    {host:<6}{h['edge']:<8}{h['group']:<10}{format_rate(h['tx_bps']):>9}"
                   f"{format_rate(h['rx_bps']):>9}{fmt.percent(h['tx_load'], 1):>9}{fmt.percent(h['rx_load'], 1):>9}"
                   f"{s['peak_fan_in'].get(host, 0):>8}")
    matrix = s["edge_matrix_bytes"]
    typer.echo("  traffic matrix, bytes from edge switch (rows) to edge switch (columns)")
    typer.echo("    " + " " * 8 + "".join(f"{e:>10}" for e in matrix["edges"]))
    for edge, row in zip(matrix["edges"], matrix["bytes"]):
        typer.echo(f"    {edge:<8}" + "".join(f"{format_bytes(v) if v else '-':>10}" for v in row))
    if s["notes"]:
        typer.echo("  notes")
        for note in s["notes"]:
            typer.echo(f"    - {note}")


@app.command("gen")
def gen(file: Path = _FILE, topo: Path = _TOPO, seed: Optional[int] = _SEED,
        output: Path = typer.Option(..., "--output", "-o", help="Schedule Parquet file to write.")) -> None:
    """Generate a profile's schedule on a fabric design and write it as Parquet."""
    result, _ = _generate(file, topo, seed)
    write_schedule(result.frame, output)
    frame = result.frame
    typer.echo(f"wrote {output}: {fmt.count(len(frame))} messages, {format_bytes(int(frame['bytes'].sum()))} "
               f"over {result.workload.duration_s:g} s (seed {result.seed})")
