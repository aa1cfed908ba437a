"""A sweep as a service: run a plan's points through an executor, keep what each produced, and
write the results. ``fabric sweep`` parses options, builds the executor, calls :func:`run_sweep`
and renders what it reports; this module prints nothing (progress goes to :class:`SweepEvents`).

Layout of ``DIR``::

    DIR/points/<hash>/         a normal run directory (metrics.json included) per finished point
    DIR/points/<hash>.json     the point's record: swept values, resolved design and workload
                               mappings, seed, engine, status, reason, wall time, worker
    DIR/sweep.parquet          one row per point (fabric.sweep.results)
    DIR/sweep.md, sweep_<key>.png, find.json (with find:)

* **Resume**: a point whose run directory exists is not run again (its hash covers every input),
  so an interrupted sweep picks up where it stopped and a point two sweeps share runs once. A point
  that failed is tried again on the next invocation. One sweep at a time per DIR: a new one removes
  the staging directories that killed workers left for unfinished points.
* **Failure policy**: a point that fails is recorded with its reason; the others go on. Ctrl-C
  stops submitting, keeps every finished point, and still writes the results (``interrupted``).
* **Economics** run here, on the client: :func:`fabric.economics.cpmt_for_run` of every finished
  point with the sweep's cost file (so a new cost file re-prices a sweep without re-running it).
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path

from fabric.errors import FabricError
from fabric.jsonio import write_json
from fabric.sweep.find import RateSearch, slo_verdict
from fabric.sweep.plan import Point, Search, SweepPlan, probe_point
from fabric.sweep.point import TOKEN_FILE, PointTask, points_dir, unpack


@dataclass
class PointRecord:
    point: Point
    status: str = "not_run"            # ok | failed | not_run
    reason: str | None = None
    cached: bool = False               # found in DIR from an earlier invocation, not run now
    wall_time_s: float | None = None
    worker: str | None = None
    metrics: dict | None = None
    cpmt: dict | None = None
    cpmt_error: str | None = None


@dataclass
class SearchState:
    search: Search
    state: RateSearch
    probes: dict[float, PointRecord] = field(default_factory=dict)


@dataclass
class SweepResult:
    plan: SweepPlan
    out: Path
    records: list[PointRecord]
    searches: list[SearchState]
    interrupted: bool
    executor: str
    wall_time_s: float = 0.0

    @property
    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for r in self.records:
            key = "cached" if r.cached else r.status
            out[key] = out.get(key, 0) + 1
        return out

    @property
    def ran(self) -> int:
        """Points run by this invocation (not found from an earlier one)."""
        return sum(1 for r in self.records if r.status != "not_run" and not r.cached)

    @property
    def exit_code(self) -> int:
        if self.interrupted:
            return 130
        return 0 if any(r.status == "ok" for r in self.records) else 1


class SweepEvents:
    """What a sweep tells its caller; each method does nothing here."""

    def started(self, plan: SweepPlan, total: int, executor: str) -> None:
        """Before the first point; ``total`` counts grid points and the most probes searches may need."""

    def point_finished(self, record: PointRecord) -> None:
        """A point finished (ok or failed), or was found already done."""

    def finished(self) -> None:
        """After the last point (also when interrupted)."""


def run_sweep(plan: SweepPlan, out: Path, executor, events: SweepEvents | None = None) -> SweepResult:
    """Run every point of ``plan`` (and the probes of its searches) into ``out`` through ``executor``."""
    events = events or SweepEvents()
    out = Path(out).absolute()
    started = time.time()
    points_dir(out).mkdir(parents=True, exist_ok=True)
    _remove_stale_stages(out)
    token = secrets.token_hex(16)
    (out / TOKEN_FILE).write_text(token + "\n")
    spec = plan.spec
    records: dict[str, PointRecord] = {}
    order: list[str] = []
    searches = [SearchState(s, RateSearch(s.low, s.high, s.steps)) for s in plan.searches]
    search_of: dict[str, list[tuple[SearchState, float]]] = {}
    submitted: set[str] = set()   # hashes handed to the executor: two searches may need the same probe

    def task_of(point: Point) -> PointTask:
        return PointTask(point, str(spec.design_path), str(spec.workload_path), str(out), token, spec.name)

    def record_of(point: Point) -> PointRecord:
        if point.hash not in records:
            records[point.hash] = PointRecord(point)
            order.append(point.hash)
        return records[point.hash]

    def finish(record: PointRecord) -> None:
        """Analysis on the client, the point's record file, the caller's event."""
        if record.status == "ok":
            _economics(record, out, plan.costs)
        write_json(points_dir(out) / f"{record.point.hash}.json", _record_json(record))
        events.point_finished(record)

    def advance(st: SearchState) -> list[PointRecord]:
        """Feed the search every probe already known (run earlier, or failed); return the probes to run
        (not those already submitted for another search: :func:`done` feeds every search waiting on one)."""
        to_run: list[PointRecord] = []
        waiting = False
        while not waiting:
            values = st.state.next_values()
            if not values:
                break
            for v in values:
                p = probe_point(plan, st.search, v)
                rec = record_of(p)
                st.probes[v] = rec
                search_of.setdefault(p.hash, []).append((st, v))
                if rec.status == "not_run" and p.hash not in submitted and _cached(rec, out):
                    finish(rec)
                if rec.status == "not_run":
                    waiting = True
                    if p.hash not in submitted:
                        submitted.add(p.hash)
                        to_run.append(rec)
                else:
                    _feed(st, v, rec)
        return to_run

    def done(task: PointTask, outcome: dict) -> list:
        rec = records[task.point.hash]
        rec.status, rec.reason = outcome["status"], outcome.get("reason")
        rec.wall_time_s, rec.worker = outcome.get("wall_time_s"), outcome.get("worker")
        if rec.status == "ok" and outcome.get("archive"):
            try:
                unpack(outcome["archive"], points_dir(out) / rec.point.hash)
            except (OSError, ValueError) as exc:
                rec.status, rec.reason = "failed", f"could not unpack the run directory the worker returned: {exc}"
        finish(rec)
        new = []
        for st, v in search_of.get(rec.point.hash, []):
            if st.state.done or v in st.state.results:
                continue
            _feed(st, v, rec)
            new += [(task_of(r.point), _resources(r.point)) for r in advance(st)]
        return new

    total = len(plan.points) + sum(2 + s.steps for s in plan.searches)
    events.started(plan, total, executor.description)
    interrupted = False
    try:
        initial = []
        for p in plan.points:
            rec = record_of(p)
            if _cached(rec, out):
                finish(rec)
            else:
                submitted.add(p.hash)
                initial.append((task_of(p), _resources(p)))
        for st in searches:
            initial += [(task_of(r.point), _resources(r.point)) for r in advance(st)]
        if initial:
            executor.run(initial, done)
    except KeyboardInterrupt:
        interrupted = True
        # A local cluster's workers are killed when it closes, mid-point: then their staging goes too.
        unfinished = [h for h, r in records.items() if r.status != "ok"]
        executor.after_close(lambda: _remove_stale_stages(out, unfinished))
    finally:
        events.finished()
    (out / TOKEN_FILE).unlink(missing_ok=True)
    return SweepResult(plan, out, [records[h] for h in order], searches, interrupted, executor.description,
                       round(time.time() - started, 1))


def _remove_stale_stages(out: Path, hashes: list[str] | None = None) -> None:
    """Staging directories of unfinished points (of ``hashes``; default: all) left by a worker that
    was killed mid-run: a sweep interrupted with Ctrl-C closes its local cluster under them (and
    removes them once it is closed), a crash leaves them. One sweep at a time per DIR."""
    import shutil
    for pattern in [f".{h}.partial-*" for h in hashes] if hashes is not None else [".*.partial-*"]:
        for stage in points_dir(out).glob(pattern):
            if stage.is_dir():
                shutil.rmtree(stage, ignore_errors=True)


def _resources(point: Point) -> dict | None:
    from fabric.sweep.engines import resources_for
    return resources_for(point.engine)


def _cached(record: PointRecord, out: Path) -> bool:
    """Mark ``record`` ok-and-cached when its run directory is already in DIR."""
    run_dir = points_dir(out) / record.point.hash
    if not (run_dir / "run.json").is_file():
        return False
    record.status, record.reason, record.cached = "ok", None, True
    previous = points_dir(out) / f"{record.point.hash}.json"
    if previous.is_file():
        import json
        try:
            old = json.loads(previous.read_text())
            record.wall_time_s, record.worker = old.get("wall_time_s"), old.get("worker")
        except ValueError:
            pass
    return True


def _feed(st: SearchState, value: float, rec: PointRecord) -> None:
    if rec.status != "ok":
        st.state.record(value, False, f"run failed: {rec.reason}")
        return
    met, why = slo_verdict(rec.cpmt)
    st.state.record(value, met, why)


def _economics(record: PointRecord, out: Path, costs) -> None:
    from fabric.analysis.run_metrics import write_metrics
    from fabric.economics import cpmt_for_run
    from fabric.jsonio import plain

    run_dir = points_dir(out) / record.point.hash
    try:
        metrics_file = run_dir / "metrics.json"
        if metrics_file.is_file():
            import json
            record.metrics = json.loads(metrics_file.read_text())
        else:
            record.metrics = write_metrics(run_dir)
    except FabricError as exc:
        record.status, record.reason = "failed", f"analysis failed: {exc}"
        return
    try:
        record.cpmt = plain(cpmt_for_run(run_dir, costs))
    except FabricError as exc:
        record.cpmt_error = str(exc)


def _record_json(record: PointRecord) -> dict:
    p = record.point
    return {"point": p.hash, "role": p.role, "values": {k: v for k, v in p.values}, "seed": p.seed,
            "engine": p.engine, "scale": p.scale, "status": record.status, "reason": record.reason,
            "wall_time_s": record.wall_time_s, "worker": record.worker, "cpmt_error": record.cpmt_error,
            # The resolved inputs: enough to re-create the point's design and profile files exactly.
            "design": p.design, "workload": p.workload}


def search_summaries(result: SweepResult) -> list[dict]:
    """Per search: the design point, the value found, and η and CPMT of the run at that value."""
    out = []
    for st in result.searches:
        s, state = st.search, st.state
        found = state.found
        rec = st.probes.get(found) if found is not None else None
        cpmt = (rec.cpmt if rec else None) or {}
        if state.undefined:
            note = state.undefined
        elif not state.done:
            note = "not finished (interrupted)"
        elif found is None:
            note = f"SLOs missed already at the low bound {s.low:g}: {state.reasons.get(s.low, '')}"
        elif state.at_high_bound:
            note = f"SLOs met at the high bound {s.high:g}: the highest rate within the SLOs is at least this"
        else:
            lo, hi = state.bracket
            note = f"between {lo:g} (met) and {hi:g} (missed) after {s.steps} bisection(s)"
        out.append({"label": ", ".join(f"{k}={v}" for k, v in s.base.values) or "base", "values": dict(s.base.values),
                    "seed": s.base.seed, "engine": s.base.engine, "key": s.key.text, "found": found,
                    "point": rec.point.hash if rec else None,
                    "eta_combined": (cpmt.get("eta") or {}).get("combined"),
                    "eta_interval": (cpmt.get("eta_interval") or {}).get("combined"),
                    "cpmt_total_usd_per_mtok": cpmt.get("cpmt_total_usd_per_mtok"),
                    "cpmt_total_interval": cpmt.get("cpmt_total_interval"),
                    "probes": {v: ok for v, ok in state.results.items()}, "reasons": dict(state.reasons),
                    "note": note})
    return out


def write_sweep_results(result: SweepResult) -> dict:
    """``sweep.parquet``, ``sweep.md``, the plots, and ``find.json`` when the sweep searched."""
    from fabric.sweep.results import results_frame, write_results

    spec = result.plan.spec
    keys = [k.text for k in spec.keys] + ([spec.find.key.text] if spec.find else [])
    frame = results_frame(result.records, keys)
    searches = search_summaries(result)
    info = {"name": spec.name, "description": spec.description, "follows": spec.follows, "kpis": spec.kpis,
            "source": spec.source,
            "design": str(spec.design_path), "workload": str(spec.workload_path), "engines": list(spec.engines),
            "seeds": list(spec.seeds) if spec.seeds else "the profile's", "executor": result.executor,
            "costs": str(spec.costs_path) if spec.costs_path else None, "interrupted": result.interrupted,
            "counts": ", ".join(f"{v} {k}" for k, v in sorted(result.counts.items()))}
    paths = write_results(frame, result.out, keys, info, searches) if not frame.empty else {}
    if searches:
        write_json(result.out / "find.json", {"directive": spec.find.directive, "searches": searches})
        paths["find"] = result.out / "find.json"
    paths["frame"] = frame
    return paths
