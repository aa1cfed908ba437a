"""One exception hierarchy for everything fabric refuses or fails at.

Every error carries a message meant for a network engineer: what was wrong, where
(file and key), and what would be valid. The CLI prints it on one line and exits 1;
tracebacks appear only with ``--debug``.
"""

from __future__ import annotations


class FabricError(Exception):
    """Base of every error fabric raises on purpose."""


class SpecError(FabricError):
    """An input file (fabric design, workload profile, cost file) is invalid.

    Parameters
    ----------
    source : str
        File (or other origin) of the bad value.
    key : str
        Dotted path of the offending key, e.g. ``load_balancing.mode``.
    problem : str
        What is wrong and what would be valid.
    """

    def __init__(self, source: str, key: str, problem: str):
        self.source = str(source)
        self.key = key
        self.problem = problem
        where = f"{self.source}: {key}" if key else self.source
        super().__init__(f"{where}: {problem}")


class WorkloadError(SpecError):
    """A workload profile is invalid or cannot be carried by the fabric."""


class CostError(SpecError):
    """A cost file or catalog entry is invalid."""


class EnvironmentNotReady(FabricError):
    """The machine lacks something the emulator needs (root, Mininet, a kernel feature)."""


class EmulationError(FabricError):
    """The emulator failed while building or running a fabric."""


class BudgetError(EmulationError):
    """The offered load cannot be emulated on this machine at any sane scale factor."""


class RunDirError(FabricError):
    """A run directory is missing files or holds records that do not fit together."""
