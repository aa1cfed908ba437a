"""The ``fabric`` command line: thin typer app; each command group lives in fabric/commands/.

User errors (any :class:`~fabric.errors.FabricError`) print one line and exit 1; ``--debug``
shows the traceback instead.
"""

from __future__ import annotations

import signal

import typer
from typer.core import TyperGroup

from fabric.errors import FabricError

_state = {"debug": False}


class _FabricGroup(TyperGroup):
    """Turns a FabricError from any command into one line on stderr and exit 1.

    Done here rather than in :func:`main` so that typer's ``CliRunner`` (which calls the
    command object, not ``main``) sees the same behaviour as the installed ``fabric`` script.
    """

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except FabricError as exc:
            if _state["debug"]:
                raise
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(1) from None
        except KeyboardInterrupt:
            typer.echo("interrupted; everything this run created has been removed", err=True)
            raise typer.Exit(130) from None


app = typer.Typer(
    cls=_FabricGroup,
    name="fabric",
    help="Emulate AI-inference network fabrics with real packets, measure tails, and turn them into "
         "cost per million tokens.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root(debug: bool = typer.Option(False, "--debug", help="Show tracebacks for errors.")) -> None:
    _state["debug"] = debug


def _register() -> None:
    # Imported here so `fabric --help` stays fast and each group stays in its own module.
    from fabric.commands import analyze, compare, cpmt, crosscheck, doctor, pcap, report, run, sweep, topo, traffic

    app.add_typer(topo.app, name="topo", help="Validate and inspect fabric designs.")
    app.add_typer(traffic.app, name="traffic", help="Inspect workload profiles and generate schedules.")
    app.command("compare", help="Emulate several designs on one workload (same seed, same k); write a comparison "
                           "report.")(compare.compare)
    app.command("report", help="Build the comparison report from existing run directories.")(report.report)
    app.command("run", help="Emulate one design carrying one workload; write and analyse the run.")(run.run)
    app.command("analyze", help="Recompute a run directory's metrics.json and summarise it.")(analyze.analyze)
    app.command("cpmt", help="Token-throughput derating and cost per million tokens for a run.")(cpmt.cpmt)
    app.command("pcap", help="Per-flow OWD, jitter, loss and reordering from a capture of probe packets.")(pcap.pcap)
    app.command("doctor", help="Check this machine can emulate fabrics; say what is missing.")(doctor.doctor)
    app.command("crosscheck", help="Run one design on the emulator and the packet simulator at the same k; "
                                   "compare loss, MCT and OWD per class.")(crosscheck.crosscheck)
    app.command("sweep", help="Run a parameter sweep (design and workload keys) on a Dask cluster.")(sweep.sweep)


_register()


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point; always ends in SystemExit with the command's status.

    Standalone mode lets typer report usage errors and honour ``typer.Exit`` codes (in
    non-standalone mode an ``Exit(1)`` is returned, not raised, and would be lost).

    SIGINT always interrupts (and cleans up): a process started in the background by a shell
    without job control inherits SIGINT ignored, and Python then never raises KeyboardInterrupt.
    """
    signal.signal(signal.SIGINT, signal.default_int_handler)
    app(args=argv)
