"""Each shipped pattern alone on an idle fabric (≤ 1% load): the schedule both engines' idle-fabric
tests run (tests/emulation/test_idle_fabric.py, tests/sim/test_idle_eta.py).

A shipped profile is generated on the design, then thinned to a few of its units (a KV request's
shards, one all-to-all or all-reduce step, one incast, or a single ungrouped message) per kind,
placed one after another with 100× their own busy time between them, so every NIC is busy at most
1% of the time and no two units meet.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
UNITS_PER_KIND = 4
DUTY = 0.01


def shipped_profiles() -> list[str]:
    """The shipped profiles whose patterns run alone (mixed-inference is the others together)."""
    return sorted(p.stem for p in (REPO / "traffic").glob("*.yaml") if p.stem != "mixed-inference")


def idle_schedule(schedule: pd.DataFrame, nic_bps: dict[str, float]) -> pd.DataFrame:
    """A few units (groups, or single ungrouped messages) per kind, one after another at ≤ 1% load.

    The schedule's attrs (the compute timing the generator used, its requests) are kept.
    """
    s = schedule.copy()
    s["unit"] = np.where(s["group"].astype(str) != "", s["kind"].astype(str) + "/" + s["group"].astype(str),
                         "msg/" + s["msg_id"].astype(str))
    first = s.groupby("unit")["t_start_s"].min().rename("u_start")
    s = s.join(first, on="unit")
    keep = (s.drop_duplicates("unit").sort_values(["kind", "u_start", "unit"])
            .groupby("kind").head(UNITS_PER_KIND)["unit"])
    s = s[s["unit"].isin(set(keep))].copy()
    s["offset_s"] = s["t_start_s"] - s["u_start"]
    rows, t = [], 0.0
    for _, unit in s.sort_values(["u_start", "unit"]).groupby("unit", sort=False):
        sent = unit.groupby("src")["bytes"].sum() * 8 / unit["src"].map(nic_bps).groupby(unit["src"]).first()
        received = unit.groupby("dst")["bytes"].sum() * 8 / unit["dst"].map(nic_bps).groupby(unit["dst"]).first()
        busy_s = max(sent.max(), received.max())
        rows.append(unit.assign(t_start_s=t + unit["offset_s"]))
        t += unit["offset_s"].max() + busy_s / DUTY
    out = pd.concat(rows).drop(columns=["unit", "u_start", "offset_s"])
    out["msg_id"] = np.arange(len(out))
    out = out.reset_index(drop=True)
    out.attrs = dict(schedule.attrs)
    return out
