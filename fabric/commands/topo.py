"""``fabric topo``: validate and inspect fabric designs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import List

import typer

from fabric import fmt
from fabric.specs import load_fabric_spec
from fabric.topology import build_fabric, fabric_facts, host_link_label
from fabric.units import format_rate, parse_rate_bps

app = typer.Typer(no_args_is_help=True)
# Where a host group's NICs came from (fabric.specs.NIC_SOURCES), in words.
NIC_FROM = {"group": "the group's nic_rate", "host_link_rate": "the design's host_link_rate",
            "catalog": "the accelerator catalog"}


def _bps(label: str) -> float:
    return parse_rate_bps(label)


@app.command("validate")
def validate(files: List[Path] = typer.Argument(..., help="Fabric design YAML files.")) -> None:
    """Validate fabric designs; the first invalid one stops with a clear error (exit 1)."""
    for path in files:
        spec = load_fabric_spec(path)
        facts = fabric_facts(build_fabric(spec))
        note = "" if facts["emulable"] else " (too large to emulate here)"
        typer.echo(f"ok  {path}: {spec.kind}, {facts['hosts']} hosts, {facts['links']['total']} links{note}")


@app.command("show")
def show(file: Path = typer.Argument(..., help="Fabric design YAML file."),
         as_json: bool = typer.Option(False, "--json", help="Print machine-readable JSON.")) -> None:
    """Show a design's size, oversubscription, bisection bandwidth, ports and bill of materials."""
    spec = load_fabric_spec(file)
    facts = fabric_facts(build_fabric(spec))
    if as_json:
        typer.echo(json.dumps(facts, indent=2, sort_keys=True))
        return
    plural = {"leaf": "leaves", "spine": "spines", "ncp": "NCPs", "ncf": "NCFs"}
    sw = ", ".join(f"{n} {plural[role]}" for role, n in facts["switches"].items())
    typer.echo(f"{facts['name']} ({facts['kind']}): {spec.description}")
    mix = facts["host_link_mix"]
    if len(mix) == 1 and mix[0]["nic_count"] == 1:
        typer.echo(f"  hosts            {facts['hosts']} at {format_rate(mix[0]['rate_bps'])}bit/s")
    else:
        typer.echo(f"  hosts            {facts['hosts']}: " + ", ".join(
            f"{m['hosts']} at {host_link_label(m['rate_bps'], m['nic_count'], m['nic_rate_bps'])}" for m in mix))
    typer.echo(f"  switches         {sw}")
    typer.echo(f"  links            {facts['links']['host']} host + {facts['links']['fabric']} fabric "
               f"at {format_rate(facts['fabric_link_rate_bps'])}bit/s = {facts['links']['total']}")
    typer.echo(f"  oversubscription {fmt.fixed(facts['oversubscription'], 2)}:1")
    typer.echo(f"  bisection        {format_rate(facts['bisection_bps'])}bit/s")
    typer.echo(f"  load balancing   {facts['load_balancing']} "
               f"({facts['ecmp_paths_between_edges']} paths between edge switches)")
    if spec.scheduler is not None:
        typer.echo(f"  scheduler        {spec.scheduler.policy}, tick {spec.scheduler.tick_ns / 1e6:g} ms, "
                   f"VOQ depth {spec.voq_depth_bytes / 1e6:g} MB, speedup {spec.fabric_speedup:g}")
    for role, p in facts["ports"].items():
        # Edge switches differ when their hosts' NICs do: one entry per port layout.
        layouts = p.get("layouts") or [p | {"count": p["count"]}]
        typer.echo(f"  {role:<16} " + "; ".join(
            f"{lay['count']} x {lay['ports_per_switch']} ports ("
            + ", ".join(f"{n} x {s}" for s, n in sorted(lay["ports_by_speed"].items(), key=lambda e: _bps(e[0])))
            + ")" for lay in layouts))
    typer.echo("  host groups")
    for g in facts["host_groups"]:
        nics = f"{g['nic_count']} x {format_rate(g['nic_rate_bps'])}" if g["nic_count"] > 1 else format_rate(g["nic_rate_bps"])
        b = g["bom"]
        typer.echo(f"    {g['name']}: {g['count']} x {g['accelerator']} ({g['role']}), NIC {nics} "
                   f"(from {NIC_FROM[g['nic_from']]}); bill of materials: {b['nics']} x {b['speed']} NICs, "
                   f"{b['optics']} optics, {b['edge_ports']} edge-switch ports")
    bom = facts["bom"]
    typer.echo("  bill of materials")
    for s in bom["switches"]:
        typer.echo(f"    {s['count']:>5} x {s['role']} switch, {s['radix']} ports of {s['speed']}")
    for o in bom["optics"]:
        typer.echo(f"    {o['count']:>5} x {o['speed']} optics (one per link end)")
    for n in bom["nics"]:
        typer.echo(f"    {n['count']:>5} x {n['speed']} NICs")
    typer.echo(f"  emulation        {'yes' if facts['emulable'] else 'NO'}: {facts['emulable_reason']}")
