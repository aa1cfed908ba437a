"""``fabric doctor``: what this machine can emulate, and its packet budget."""

from __future__ import annotations

import json

import typer

from fabric.doctor import budget_summary, emulation_ready, ladder_lines, run_checks


def doctor(as_json: bool = typer.Option(False, "--json", help="Print machine-readable JSON."),
           calibrate: bool = typer.Option(False, "--calibrate",
                                          help="Measure this machine's packet budget now (root, up to a minute) "
                                               "and cache it for this boot."),
           ) -> None:
    """Check root, Mininet, tools and kernel features; print what works, what is missing and the packet budget."""
    from fabric.emu import calibrate as cb

    checks = run_checks()
    ready = emulation_ready(checks)
    if not as_json:
        for c in checks:
            mark = "ok  " if c.ok else ("MISSING" if c.required else "absent ")
            line = f"{mark:<8}{c.name:<32}{c.detail}"
            if not c.ok:
                line += f"\n{'':<40}disables: {c.disables}"
            typer.echo(line)
    cal = cb.load_calibration()
    if calibrate and ready:
        # Progress goes to stderr with --json, so stdout stays one JSON document.
        cal = cb.calibrate(progress=lambda message, fraction: typer.echo(message, err=as_json))
    if as_json:
        typer.echo(json.dumps({"ready": ready, "checks": [c.to_dict() for c in checks],
                               "budget": cal.to_dict() if cal else None,
                               "budget_summary": budget_summary(cal)}, indent=2))
    else:
        if calibrate and cal is not None and ready:
            typer.echo("\n".join(ladder_lines(cal)))
        mark = "ok" if cal else "todo"
        typer.echo(f"{mark:<8}{'packet budget':<32}{budget_summary(cal)}")
        if calibrate and not ready:
            typer.echo("cannot calibrate: the machine is not ready to emulate")
        typer.echo("ready to emulate" if ready else "NOT ready to emulate: fix the MISSING items above")
    raise typer.Exit(0 if ready else 1)
