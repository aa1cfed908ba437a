"""The two engines as a sweep runs them: runner and options per engine name, and the emulator in
a child process when the caller is not a main thread.

A Dask worker runs tasks on pool threads, and the emulator installs a SIGTERM handler (only a
main thread may), so off the main thread :func:`emulate` runs :func:`fabric.emu.runner.run` in
``python -m fabric.sweep.engines`` and waits for it; the child dies with its parent and reports
its error back on one line. The simulator already runs ns-3 in its own child and needs nothing.

Every runner has the signature ``runner(spec, g, schedule, out_dir, options, progress) -> Path``
(:data:`fabric.compare.Runner`); a test passes its own in place of these.
"""

from __future__ import annotations

import json
import pickle
import signal
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

from fabric.errors import EmulationError

# Dask worker resource an emulation point holds: a machine's workers offer one unit in total, so at
# most one emulation runs per machine (it needs the whole machine), while simulations fill the rest.
EMULATOR_RESOURCE = "emulator"


def default_runner(engine: str):
    """The real runner of ``engine`` (imported lazily: the emulator needs Mininet only when used)."""
    if engine == "sim":
        from fabric.sim.runner import run
        return run
    return emulate


def options_for(engine: str, *, seed: int, hash_seed: int, scale: float | None, name: str, extra: dict):
    """The engine's options dataclass for one point."""
    if engine == "sim":
        from fabric.sim.runner import SimOptions
        return SimOptions(seed=seed, hash_seed=hash_seed, scale=scale or 1.0, name=name, extra=extra)
    from fabric.emu.runner import RunOptions
    return RunOptions(seed=seed, hash_seed=hash_seed, scale=scale, name=name, extra=extra)


def resources_for(engine: str) -> dict | None:
    """Dask resources a point of ``engine`` must hold while it runs."""
    return {EMULATOR_RESOURCE: 1} if engine == "emu" else None


def emulate(spec, g, schedule, out_dir: Path, options, progress=None) -> Path:
    """:func:`fabric.emu.runner.run`, in this thread if it is the main one, else in a child process."""
    from fabric.emu import runner as emulator

    if threading.current_thread() is threading.main_thread():
        return emulator.run(spec, g, schedule, out_dir, options, progress=progress)
    with tempfile.TemporaryDirectory(prefix="fabric-sweep-emu-") as tmp:
        job = Path(tmp) / "job.pickle"
        job.write_bytes(pickle.dumps((spec, g, schedule, str(out_dir), options)))
        proc = subprocess.Popen([sys.executable, "-m", "fabric.sweep.engines", str(job)], stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        error = None
        try:
            for line in proc.stdout:
                try:
                    msg = json.loads(line)
                except ValueError:
                    continue
                if "error" in msg:
                    error = msg["error"]
                elif progress is not None and "stage" in msg:
                    progress(str(msg["stage"]), float(msg["fraction"]))
            code = proc.wait()
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)  # the emulator cleans up on SIGTERM
                proc.wait()
            proc.stdout.close()
    if code != 0:
        raise EmulationError(error or f"the emulator process failed (exit code {code})")
    return Path(out_dir)


def _child(job: str) -> int:
    try:
        import ctypes
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG: die with the worker
    except (OSError, AttributeError):
        pass
    from fabric.emu import runner as emulator

    spec, g, schedule, out_dir, options = pickle.loads(Path(job).read_bytes())

    def report(stage: str, fraction: float) -> None:
        print(json.dumps({"stage": stage, "fraction": fraction}), flush=True)

    try:
        emulator.run(spec, g, schedule, Path(out_dir), options, progress=report)
    except KeyboardInterrupt:
        print(json.dumps({"error": "interrupted"}), flush=True)
        return 130
    except Exception as exc:  # reported to the parent, which raises it as the point's reason
        print(json.dumps({"error": f"{type(exc).__name__}: {exc}" if not str(exc) else str(exc)}), flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(_child(sys.argv[1]) if len(sys.argv) == 2 else 2)
