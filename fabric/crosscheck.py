"""Cross-check the two engines: the same design and schedule on the emulator and, at the
emulator's scale k, on the packet simulator; per traffic class, loss, MCT and one-way delay side by
side (docs/design.md §4 "Engines").

The emulator runs first and chooses k (and dilation) from this machine's packet budget; the
simulator then runs the same schedule with rates, sizes and buffers divided by that k, so both
engines see the same packets on the same links. Where they disagree by more than
:data:`TOLERANCE` the table says so: one of the two models is not what it claims.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import networkx as nx
import pandas as pd

from fabric.jsonio import number
from fabric.specs import FabricSpec

TOLERANCE = 0.10
# (label, metrics.json path within a class, unit): OWD of the packets that arrived (a loss-aware
# percentile is "inf" as soon as one packet of the class is lost, on either engine).
FIGURES = (("loss", ("loss_ratio",), ""), ("MCT p50", ("mct_ms", "p50"), "ms"), ("MCT p99", ("mct_ms", "p99"), "ms"),
           ("OWD p50", ("owd_us", "rx_p50"), "µs"), ("OWD p99", ("owd_us", "rx_p99"), "µs"))
# Loss below this on both engines is "none" and compared as equal (a relative error of 0.1% vs
# 0.2% is noise, not a disagreement).
LOSS_FLOOR = 0.005
# A p99 over fewer samples is the maximum of a handful: one straggler decides it on either engine.
# Below this many messages (or packets) a class's p99 is shown but not compared.
MIN_SAMPLES_FOR_P99 = 100


@dataclass(frozen=True)
class Row:
    kind: str
    figure: str
    unit: str
    emu: float | None
    sim: float | None
    samples: int | None = None   # messages (MCT) or received packets (OWD) behind the figure, fewer of both


    @property
    def comparable(self) -> bool:
        return not (self.figure.endswith("p99") and self.samples is not None and self.samples < MIN_SAMPLES_FOR_P99)

    @property
    def rel_diff(self) -> float | None:
        if self.emu is None or self.sim is None or not self.comparable:
            return None
        if self.figure == "loss" and max(self.emu, self.sim) < LOSS_FLOOR:
            return 0.0
        if self.emu == self.sim:
            return 0.0
        scale = max(abs(self.emu), abs(self.sim))
        return abs(self.sim - self.emu) / scale if scale > 0 and math.isfinite(scale) else None

    @property
    def agrees(self) -> bool | None:
        d = self.rel_diff
        return None if d is None else d <= TOLERANCE

    def to_dict(self) -> dict:
        return {"class": self.kind, "figure": self.figure, "unit": self.unit, "emu": self.emu, "sim": self.sim,
                "samples": self.samples, "rel_diff": self.rel_diff, "agrees": self.agrees,
                "note": None if self.comparable else f"p99 of {self.samples} samples: not compared"}


def _figure(metrics: dict, kind: str, path: tuple[str, ...]) -> float | None:
    value = metrics.get("classes", {}).get(kind, {})
    for key in path:
        value = value.get(key) if isinstance(value, dict) else None
    return number(value)


def compare_metrics(emu: dict, sim: dict) -> list[Row]:
    """Per class present in both metrics.json, the figures of :data:`FIGURES` side by side."""
    kinds = sorted(set(emu.get("classes", {})) & set(sim.get("classes", {})))

    def samples(kind: str, path: tuple[str, ...]) -> int | None:
        key = {"mct_ms": ("mct_ms", "n"), "owd_us": ("owd_us", "n_rx")}.get(path[0])
        if key is None:
            return None
        counts = [_figure(m, kind, key) for m in (emu, sim)]
        return int(min(counts)) if all(c is not None for c in counts) else None

    return [Row(kind, label, unit, _figure(emu, kind, path), _figure(sim, kind, path), samples(kind, path))
            for kind in kinds for label, path, unit in FIGURES]


def crosscheck(spec: FabricSpec, g: nx.MultiGraph, schedule: pd.DataFrame, out_dir: Path, emu_options,
               progress: Callable[[str, float], None] | None = None) -> dict:
    """Run both engines into ``out_dir/emu`` and ``out_dir/sim``; return the comparison."""
    from fabric.analysis.run_metrics import write_metrics
    from fabric.emu.runner import run as emulate
    from fabric.rundir import check_out_dir, read_run_json
    from fabric.sim.runner import SimOptions
    from fabric.sim.runner import run as simulate

    out_dir = Path(out_dir)
    check_out_dir(out_dir)
    report = progress or (lambda stage, fraction: None)
    emulate(spec, g, schedule, out_dir / "emu", emu_options, progress=lambda s, f: report(f"emu {s}", f))
    emu_run = read_run_json(out_dir / "emu")
    # tmax_ns is the emulator's wait after the last send in schedule time (undilated), as the simulator's.
    sim_options = SimOptions(seed=emu_options.seed, hash_seed=emu_options.hash_seed, scale=emu_run["scale_k"],
                             payload_bytes=emu_run["payload_bytes"], tmax_s=emu_run["tmax_ns"] / 1e9, name="sim",
                             extra=dict(emu_options.extra))
    simulate(spec, g, schedule, out_dir / "sim", sim_options, progress=lambda s, f: report(f"sim {s}", f))
    emu_metrics, sim_metrics = write_metrics(out_dir / "emu"), write_metrics(out_dir / "sim")
    rows = compare_metrics(emu_metrics, sim_metrics)
    result = {"design": spec.name, "scale_k": emu_run["scale_k"], "dilation": emu_run["dilation"],
              "tolerance": TOLERANCE, "emu_dir": str(out_dir / "emu"), "sim_dir": str(out_dir / "sim"),
              "emu_fidelity": (emu_metrics.get("fidelity") or {}).get("verdict"),
              "rows": [r.to_dict() for r in rows],
              "agree": all(r.agrees is not False for r in rows)}
    (out_dir / "crosscheck.json").write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
    return result
