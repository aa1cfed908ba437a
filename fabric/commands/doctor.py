"""``fabric doctor``: what this machine can emulate."""

from __future__ import annotations

import json

import typer

from fabric.doctor import emulation_ready, run_checks


def doctor(as_json: bool = typer.Option(False, "--json", help="Print machine-readable JSON.")) -> None:
    """Check root, Mininet, tools and kernel features; print what works and what is missing."""
    checks = run_checks()
    ready = emulation_ready(checks)
    if as_json:
        typer.echo(json.dumps({"ready": ready, "checks": [c.to_dict() for c in checks]}, indent=2))
    else:
        for c in checks:
            mark = "ok  " if c.ok else ("MISSING" if c.required else "absent ")
            line = f"{mark:<8}{c.name:<32}{c.detail}"
            if not c.ok:
                line += f"\n{'':<40}disables: {c.disables}"
            typer.echo(line)
        typer.echo("ready to emulate" if ready else "NOT ready to emulate: fix the MISSING items above")
    raise typer.Exit(0 if ready else 1)
