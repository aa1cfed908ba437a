"""Rendering: the summary dict → report.html (self-contained, plots as base64 PNG) and report.md.

Templates live in ``fabric/report/templates/``; both formats get the same :mod:`tables`, the
same break-even lines and the same limits. :func:`write_report` writes report.html, report.md
and summary.json.
"""

from __future__ import annotations

import base64
from pathlib import Path

from jinja2 import Environment, PackageLoader, StrictUndefined

from fabric.jsonio import write_json
from fabric.report import tables as T

# docs/design.md §8 and the emulator's own limits: stated in every report.
LIMITS = [
    "No shared-buffer model across ports: each port has its own queue (real switch ASICs share a buffer "
    "between ports, which changes how bursts are absorbed and when drops start).",
    "No PFC or ECN marking: the fabric drops when a queue is full, with no lossless back-pressure and no "
    "congestion marking.",
    "No propagation delay unless netem is present on the kernel (cables and switch pipelines add "
    "~0.5–2 µs per hop in a real fabric); delays here are serialization, queueing and the software path.",
    "Per-packet serialization is k× coarser than in the real fabric: packets are not scaled (4096-byte "
    "payloads), link rates are divided by k.",
    "Traffic is open-loop UDP replaying the schedule: there is no congestion control and no retransmission; "
    "lost packets are charged through the go-back-N loss-recovery model after the fact.",
    "The scheduled fabric's credit scheduler runs in a process that regrants VOQ rates every tick "
    "(milliseconds, and late under CPU load); a real DDC grants credits in microseconds, and the credit "
    "round-trip delay is not modelled.",
    "Results are about queueing, load balancing and scheduling — which is where the designs differ. Absolute "
    "delays include the emulator's software path (see the noise floor in the fidelity table).",
]


def _env() -> Environment:
    env = Environment(loader=PackageLoader("fabric.report", "templates"),
                      autoescape=lambda name: bool(name) and name.endswith(".html.j2"),
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
    env.filters["md_table"] = T.markdown_table
    env.filters["kfmt"] = lambda k: f"{k:g}" if isinstance(k, (int, float)) else "differs between designs"
    return env


def context(summary: dict, plots: list[dict] | None) -> dict:
    tabs = T.all_tables(summary)
    images = []
    for p in plots or []:
        images.append({**p, "data_uri": ("data:image/png;base64," + base64.b64encode(p["png"]).decode("ascii"))
                       if p.get("png") else None})
    comp = summary["comparison"]
    title = "fabric comparison: " + ", ".join(d["name"] for d in summary["designs"])
    return {"s": summary, "title": title, "tables": tabs, "plots": images, "limits": LIMITS,
            "break_even": T.break_even_lines(summary), "winner": T.winner_line(summary),
            "mix_break_even": T.mix_break_even_lines(summary),
            # Drawn in the sensitivity section (HTML), next to their tables, not among the other plots.
            "sensitivity_plots": ("tornado", "break-even-plot"),
            "workload_lines": T.workload_lines(summary),
            "scale_lines": T.scale_lines(summary), "not_trusted": comp.get("not_trusted") or [],
            "rule": "design B beats design A iff η_B / η_A > C_hour,B / C_hour,A; with the network at share f of "
                    "A's hourly cost and B's network dearer by fraction p: iff η_B / η_A > 1 + f·p (docs/economics.md §1)"}


def render_html(summary: dict, plots: list[dict] | None) -> str:
    return _env().get_template("report.html.j2").render(**context(summary, plots))


def render_markdown(summary: dict, plots: list[dict] | None = None, html_name: str = "report.html") -> str:
    return _env().get_template("report.md.j2").render(**context(summary, plots), html_name=html_name)


def write_summary_json(summary: dict, path: Path) -> None:
    write_json(path, summary, sort_keys=False)


def write_report(summary: dict, html_path: Path, with_plots: bool = True) -> dict[str, Path]:
    """Write report.html at ``html_path`` and report.md + summary.json next to it; return the paths."""
    from fabric.report.plots import all_plots
    html_path = Path(html_path)
    html_path.parent.mkdir(parents=True, exist_ok=True)
    plots = all_plots(summary) if with_plots else []
    md_path = html_path.with_suffix(".md")
    json_path = html_path.parent / "summary.json"
    write_summary_json(summary, json_path)
    html_path.write_text(render_html(summary, plots))
    md_path.write_text(render_markdown(summary, plots, html_name=html_path.name))
    return {"html": html_path, "md": md_path, "json": json_path}
