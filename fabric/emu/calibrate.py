"""This machine's packet budget, measured on it rather than assumed (docs/design.md §6 "Budget").

Machines of one kind differ by 2x in how many packets/s the emulator keeps on schedule, so the
budget that :mod:`fabric.emu.scale` plans with is measured here, once per boot, and cached.

How: a 2-leaf, 4-spine sprayed fabric whose fabric links run at twice the host rate (no link is
oversubscribed; buffers are deep), 16 senders each offering 90% of its line rate to a host on the
other leaf. The scale factor k sets the offered packet rate. A *step* runs one offered load for
:data:`STEP_DURATION_S` through the normal runner and measures delivered packets/s, loss, the
sender shortfall and the run's fidelity verdict. A step *holds* when neither way an overloaded
emulator fails shows:

* ``sender_rate_shortfall`` <= :data:`HOLD_SHORTFALL` (senders keep their NICs busy, on schedule).
  That is a fifth of the signal's warn threshold: a message on an idle fabric may finish at most 5%
  behind its ideal (tests/emulation/test_idle_fabric.py), and a run at the budget must not spend
  that on its senders. At the warn threshold (10%) runs at 0.8 of the load came out 5-7.5% slow;
* the emulator's own loss — host-side loss, and packets lost but counted by no queue's drop
  counter (backlog queues, sockets) — <= the ``host_side_loss_ratio`` warn threshold (zero).

Search: a coarse ladder doubling from :data:`LADDER_START_PPS` until a step fails (halving instead
when the first one fails), then bisection between the highest load that held and the lowest that
failed until they are within :data:`BISECT_UNTIL_RATIO`, then the highest load that held once more
(a load that holds once and fails once counts as failed). Typically 7 steps of ~4 s: under 30 s.
The budget is the highest load that held times :data:`SAFETY_MARGIN`: a real workload is burstier
than the bench's even spread and a single ~1 s step is noisy, so planning at the measured edge
would put runs right where senders start falling behind.

The result is cached as JSON keyed by the machine (:func:`machine_key`): kernel, CPU count, boot
id, fabric version and a hash of the sender implementation. Any of them changing makes the cache
stale, so a reboot, a kernel update or a new sender recalibrates.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from fabric import __version__
from fabric.cache import cache_dir
from fabric.errors import EmulationError

SAFETY_MARGIN = 0.8
HOLD_SHORTFALL = 0.02          # most sender shortfall a step may show and hold (see above)
STEP_DURATION_S = 1.2          # of traffic per step; plus ~3 s to build and tear down the fabric
LADDER_START_PPS = 10_000
# Stop climbing here: beyond ~100k packets/s the bench fabric's 800G links would be emulated above
# scale.MAX_EMULATED_RATE_BPS (k too small), and no 2-vCPU VM holds that much anyway.
LADDER_MAX_PPS = 100_000
LADDER_MIN_PPS = 2_500         # a machine that cannot hold this cannot emulate usefully
BISECT_UNTIL_RATIO = 1.1       # stop when highest-held and lowest-failed are within 10%
ROUND_PPS = 500                # offered loads and budgets read as round numbers
MAX_STEPS = 14                 # bounds the wall time (~4 s a step) when repeats keep failing
CACHE_FORMAT = 2                # 2: steps hold at HOLD_SHORTFALL; 64-packet messages
CACHE_FILE = "calibration.json"

# The bench fabric (also used by bench/emulator_bench.py).
HOST_RATE_BPS = 400e9
SENDERS = 16
LOAD = 0.9                     # of line rate per sender: receivers' ports run at 90%, not at 1
# Each sender offers its load in 64-packet messages at line rate, one every 1/LOAD of their time:
# 10 ms or more up to ~90k packets/s (the shortest busy period the sender-throughput signal judges),
# and short enough that a receiver's port, at full rate while one lasts, builds little queue.
CHUNK_PACKETS = 64

Progress = Callable[[str, float], None]   # (message, fraction done)


# --------------------------------------------------------------------------------------------
# The machine key and the cache
# --------------------------------------------------------------------------------------------

def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


EMU_DIR = Path(__file__).resolve().parent


def sender_implementation(emu: Path = EMU_DIR) -> dict:
    """Which traffic agents the emulator uses and a hash of their sources: new agents need a new
    budget (the receiver shares the CPUs with the senders, so it counts too)."""
    sources = [emu / "sender.c", emu / "receiver.c", emu / "agent_common.h"]
    digest = hashlib.sha256(b"".join(_sha256(p).encode() for p in sources if p.exists())).hexdigest()
    return {"impl": "native", "source": "+".join(p.name for p in sources), "sha256": digest}


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return "unknown"


def machine_key() -> dict:
    """What the budget depends on; a cached calibration is fresh only when all of it matches."""
    return {"kernel": platform.release(), "cpus": os.cpu_count() or 1, "boot_id": _boot_id(),
            "fabric_version": __version__, "sender": sender_implementation()}


def cache_path() -> Path:
    return cache_dir() / CACHE_FILE


@dataclass
class Calibration:
    budget_pps: int               # what runs plan with: sustained_pps × safety_margin
    sustained_pps: int            # highest offered load that held
    safety_margin: float
    measured_at: str              # ISO 8601, UTC
    machine: dict                 # machine_key() at measurement time
    wall_s: float                 # how long the calibration took
    ladder: list[dict] = field(default_factory=list)  # one dict per step, in the order run

    def to_dict(self) -> dict:
        return {"format": CACHE_FORMAT, **asdict(self)}

    @classmethod
    def from_dict(cls, data: dict) -> Calibration:
        if data.get("format") != CACHE_FORMAT:
            raise ValueError(f"calibration format {data.get('format')!r}, expected {CACHE_FORMAT}")
        return cls(budget_pps=int(data["budget_pps"]), sustained_pps=int(data["sustained_pps"]),
                   safety_margin=float(data["safety_margin"]), measured_at=str(data["measured_at"]),
                   machine=dict(data["machine"]), wall_s=float(data["wall_s"]), ladder=list(data["ladder"]))

    def run_facts(self) -> dict:
        """What run.json records about the budget a run planned with."""
        return {"source": "calibration", "pps": self.budget_pps, "sustained_pps": self.sustained_pps,
                "safety_margin": self.safety_margin, "measured_at": self.measured_at, "machine": self.machine}


def save_calibration(cal: Calibration, path: Path | None = None) -> Path:
    """Write atomically (temp file in the same directory, then rename): readers never see half a file."""
    path = Path(path or cache_path())
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(cal.to_dict(), fh, indent=2, sort_keys=True)
            fh.write("\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes it 0600; other users may read the budget
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return path


def load_calibration(path: Path | None = None) -> Calibration | None:
    """The cached calibration if it was measured on this machine, this boot, with this sender."""
    path = Path(path or cache_path())
    try:
        cal = Calibration.from_dict(json.loads(path.read_text()))
    except (OSError, ValueError, KeyError, TypeError):
        return None  # missing, unreadable or from another format: calibrate again
    return cal if cal.machine == machine_key() else None


# --------------------------------------------------------------------------------------------
# One offered load, and the budget from a ladder of them
# --------------------------------------------------------------------------------------------

def bench_spec():
    from fabric.specs import parse_fabric_spec
    return parse_fabric_spec({"kind": "leaf-spine", "name": "bench", "leaves": 2, "spines": 4, "hosts_per_leaf": 8,
                              "host_link_rate": "400G", "fabric_link_rate": "800G", "buffer_per_port": "2GB",
                              "load_balancing": {"mode": "spray"}}, "<bench>")


def scale_for_load(offered_pps: float, payload_bytes: int) -> float:
    """k at which the 16 senders at LOAD of line rate offer ``offered_pps`` packets/s in total."""
    from fabric.emu.plan import wire_packet_bytes
    return SENDERS * LOAD * HOST_RATE_BPS / (wire_packet_bytes(payload_bytes) * 8 * offered_pps)


def one_load(offered_pps: float, workdir: Path, duration_s: float = STEP_DURATION_S) -> dict:
    """Run one offered load on the bench fabric; return what it delivered and how faithfully."""
    import pandas as pd

    from fabric.analysis.fidelity import fidelity_signals, fidelity_verdict
    from fabric.emu.runner import RunOptions, run
    from fabric.probe import DEFAULT_PAYLOAD_BYTES
    from fabric.topology import build_fabric

    spec = bench_spec()
    g = build_fabric(spec)
    k = scale_for_load(offered_pps, DEFAULT_PAYLOAD_BYTES)
    chunk_bytes = CHUNK_PACKETS * DEFAULT_PAYLOAD_BYTES * k
    period_s = chunk_bytes * 8 / (LOAD * HOST_RATE_BPS)
    chunks = max(1, int(duration_s / period_s))
    rows = [{"msg_id": i * chunks + c, "t_start_s": c * period_s, "src": f"h{i}", "dst": f"h{(i + 8) % 16}",
             "bytes": int(chunk_bytes), "kind": "background"} for i in range(SENDERS) for c in range(chunks)]
    out = Path(tempfile.mkdtemp(prefix=f"load-{int(offered_pps)}-", dir=workdir))  # a load may run twice
    started = time.time()
    # The budget is given (and huge) so this run neither calibrates nor refuses: k is fixed here.
    run(spec, g, pd.DataFrame(rows), out, RunOptions(scale=k, dilation=1.0, budget_pps=10**9, tmax_s=0.5))
    packets = pd.read_parquet(out / "packets.parquet", columns=["copies", "rx_ns", "tx_ns"])
    got = packets[packets.copies > 0]
    span_s = (got.rx_ns.max() - got.rx_ns.min()) / 1e9 if len(got) else 0.0
    signals = fidelity_signals(out)
    links = pd.read_parquet(out / "links.parquet")
    queue_drops = int(links[links.t_ns == links.t_ns.max()].drops.sum()) if len(links) else 0
    sent = max(len(packets), 1)
    lost = 1 - len(got) / sent
    return {
        "offered_pps": float(offered_pps), "k": round(k, 1),
        "delivered_pps": round(len(got) / span_s) if span_s > 0 else 0,
        "sent_packets": len(packets), "lost_packets": len(packets) - len(got), "queue_drops": queue_drops,
        "lost": lost,
        "queue_drop_share": queue_drops / sent,
        # Lost and counted by no queue: dropped by the machine (backlog, sockets), not the fabric.
        # From packet counts, not shares: 1e-17 of rounding must not fail a step.
        "emulator_loss": max(0, len(packets) - len(got) - queue_drops) / sent,
        "host_side_loss": signals["host_side_loss_ratio"],
        "sender_shortfall": signals["sender_rate_shortfall"],
        "owd_p99_us": float((got.rx_ns - got.tx_ns).quantile(0.99) / 1e3) if len(got) else None,
        "verdict": fidelity_verdict(signals)["verdict"],
        "wall_s": round(time.time() - started, 1),
    }


def step_holds(step: dict) -> bool:
    """Senders on schedule (within :data:`HOLD_SHORTFALL`) and no loss of the emulator's own (the
    fidelity warn threshold: zero)."""
    from fabric.analysis.fidelity import THRESHOLDS
    loss_warn = THRESHOLDS["host_side_loss_ratio"][0]
    shortfall = step.get("sender_shortfall")
    if shortfall is None:  # not measurable means the senders never got going
        return False
    own_loss = max(step.get("emulator_loss") or 0.0, step.get("host_side_loss") or 0.0)
    return shortfall <= HOLD_SHORTFALL and own_loss <= loss_warn


def sustained_load(ladder: list[dict]) -> int | None:
    """Highest offered load that held and lies below every load that failed (None if none held).

    Below the lowest failure only: one lucky step above a failure is noise, not capacity.
    """
    failed = [s["offered_pps"] for s in ladder if not s["ok"]]
    ceiling = min(failed) if failed else float("inf")
    held = [s["offered_pps"] for s in ladder if s["ok"] and s["offered_pps"] < ceiling]
    return int(max(held)) if held else None


def budget_from_ladder(ladder: list[dict], margin: float = SAFETY_MARGIN) -> tuple[int, int]:
    """(sustained packets/s, budget packets/s) from the steps run; EmulationError if none held."""
    sustained = sustained_load(ladder)
    if sustained is None:
        lowest = min((s["offered_pps"] for s in ladder), default=0)
        raise EmulationError(f"this machine cannot keep even {lowest:,.0f} packets/s on schedule without loss "
                             "(see `fabric doctor --calibrate`); is it overloaded by other work?")
    return sustained, max(ROUND_PPS, int(sustained * margin // ROUND_PPS * ROUND_PPS))


def _round_pps(x: float) -> float:
    return float(max(ROUND_PPS, round(x / ROUND_PPS) * ROUND_PPS))


def next_load(ladder: list[dict]) -> float | None:
    """The next offered load to try, or None when the search is done."""
    if not ladder:
        return float(LADDER_START_PPS)
    if len(ladder) >= MAX_STEPS:  # settle for the highest load held so far
        return None
    held = [s["offered_pps"] for s in ladder if s["ok"]]
    failed = [s["offered_pps"] for s in ladder if not s["ok"]]
    if not failed:  # still climbing the coarse ladder
        nxt = max(held) * 2
        return nxt if nxt <= LADDER_MAX_PPS else None
    lo_fail = min(failed)
    below = [h for h in held if h < lo_fail]
    if not below:  # even the lowest load failed: step down
        nxt = lo_fail / 2
        return nxt if nxt >= LADDER_MIN_PPS else None
    hi_held = max(below)
    if lo_fail / hi_held <= BISECT_UNTIL_RATIO:
        # Confirm the answer once: a ~1 s step can pass by luck. If the repeat fails, that load
        # counts as failed and the search goes on below it.
        runs = sum(1 for s in ladder if s["offered_pps"] == hi_held)
        return hi_held if runs < 2 else None
    mid = _round_pps((hi_held * lo_fail) ** 0.5)  # geometric: the ladder is multiplicative
    return mid if hi_held < mid < lo_fail else None


def calibrate(progress: Progress | None = None, run_step: Callable[[float, Path], dict] | None = None,
              save: bool = True) -> Calibration:
    """Measure this machine's budget (root; ~30-60 s), cache it and return it."""
    report = progress or (lambda message, fraction: None)
    run_step = run_step or one_load
    expected_steps = 7  # for the progress fraction only
    started = time.time()
    ladder: list[dict] = []
    report(f"calibrating the packet budget: offered loads of {STEP_DURATION_S:g} s on a {SENDERS}-sender "
           "sprayed fabric", 0.0)
    with tempfile.TemporaryDirectory(prefix="fabric-calibrate-") as tmp:
        while (offered := next_load(ladder)) is not None:
            step = run_step(offered, Path(tmp))
            step["ok"] = step_holds(step)
            ladder.append(step)
            short = "n/a" if step["sender_shortfall"] is None else f"{step['sender_shortfall']:.1%}"
            report(f"  {offered:>9,.0f} pkt/s offered: {step['delivered_pps']:>9,} delivered, own loss "
                   f"{step['emulator_loss']:.2%}, sender shortfall {short}, {step['verdict']}: "
                   f"{'holds' if step['ok'] else 'fails'}", min(0.95, len(ladder) / expected_steps))
    sustained, budget = budget_from_ladder(ladder)
    cal = Calibration(budget_pps=budget, sustained_pps=sustained, safety_margin=SAFETY_MARGIN,
                      measured_at=datetime.now(UTC).isoformat(timespec="seconds"),
                      machine=machine_key(), wall_s=round(time.time() - started, 1), ladder=ladder)
    if save:
        save_calibration(cal)
    report(f"budget {budget:,} packets/s ({SAFETY_MARGIN:g} x {sustained:,} held) in {cal.wall_s:g} s", 1.0)
    return cal


def budget_pps(progress: Progress | None = None) -> Calibration:
    """The calibration fresh for this machine: from the cache, or measured now (and cached)."""
    return load_calibration() or calibrate(progress=progress)
