"""The ``fabric`` command line: thin typer app; each command group lives in fabric/commands/.

User errors (any :class:`~fabric.errors.FabricError`) print one line and exit 1; ``--debug``
shows the traceback instead.
"""

from __future__ import annotations

import sys

import typer

from fabric.errors import FabricError

app = typer.Typer(
    name="fabric",
    help="Emulate AI-inference network fabrics with real packets, measure tails, and turn them into "
         "cost per million tokens.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

_state = {"debug": False}


@app.callback()
def _root(debug: bool = typer.Option(False, "--debug", help="Show tracebacks for errors.")) -> None:
    _state["debug"] = debug


def _register() -> None:
    # Imported here so `fabric --help` stays fast and each group stays in its own module.
    from fabric.commands import doctor, topo

    app.add_typer(topo.app, name="topo", help="Validate and inspect fabric designs.")
    app.command("doctor", help="Check this machine can emulate fabrics; say what is missing.")(doctor.doctor)


_register()


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point."""
    debug = "--debug" in (argv if argv is not None else sys.argv[1:])
    try:
        app(args=argv, standalone_mode=False)
    except FabricError as exc:
        if debug:
            raise
        typer.echo(f"error: {exc}", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        typer.echo("interrupted; everything this run created has been removed", err=True)
        sys.exit(130)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except Exception as exc:  # click usage errors come as click exceptions
        import click
        if isinstance(exc, click.exceptions.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        if isinstance(exc, click.exceptions.Abort):
            sys.exit(130)
        raise
