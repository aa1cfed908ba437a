"""Reports: one or many run directories → summary.json, report.html (plots) and report.md.

Modules, one concept each (imports go one way, down this list):

* :mod:`fabric.report.summary` — the summary dict (``summary.json``, documented in
  ``docs/summary-json.md``): designs, their runs, headline figures, spread across repeats,
  η, CPMT, fidelity, break-even and significance.
* :mod:`fabric.report.series` — the per-packet / per-message / per-link series the plots need,
  read from the run directories.
* :mod:`fabric.report.plots` — matplotlib (Agg) figures as PNG bytes.
* :mod:`fabric.report.tables` — the report's tables as rows of display strings, shared by the
  HTML, the Markdown and the terminal, so all three show the same numbers.
* :mod:`fabric.report.render` — jinja2 templates → report.html / report.md, and writing the files.
* :mod:`fabric.report.terminal` — what commands print: a run's per-class figures and CPMT, a
  comparison's verdict, progress bars.
* :mod:`fabric.report.commandlines` — the command lines that reproduce a comparison and its runs.

Every number is formatted by :mod:`fabric.fmt`.
"""

from fabric.report.render import write_report
from fabric.report.summary import DesignRecord, RunRecord, build_summary, load_run

__all__ = ["DesignRecord", "RunRecord", "build_summary", "load_run", "write_report"]
