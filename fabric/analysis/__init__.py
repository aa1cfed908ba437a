"""Analysis: run-directory records → docs/metrics.md figures and the fidelity verdict (no root).

:mod:`~fabric.analysis.metrics` holds the definitions (pure, vectorized functions),
:mod:`~fabric.analysis.run_metrics` assembles ``metrics.json`` from a run directory, and
:mod:`~fabric.analysis.fidelity` grades whether the emulator kept its invariants.
"""

from fabric.analysis.fidelity import fidelity_signals, fidelity_verdict
from fabric.analysis.run_metrics import analyze_run, write_metrics

__all__ = ["analyze_run", "write_metrics", "fidelity_signals", "fidelity_verdict"]
