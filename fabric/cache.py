"""Where fabric keeps what it compiles from its own sources, and how a build gets there safely.

The emulator's traffic agents (:mod:`fabric.emu.native`) and the packet simulator's model library
(:mod:`fabric.sim.native`) are compiled once by the system compiler and kept in one cache
directory: ``$FABRIC_CACHE_DIR``, else ``/var/cache/fabric`` for root, else ``~/.cache/fabric``.
Each file's name carries a digest of what it was built from, so a changed source builds a new
file next to the old one and an unchanged one is never rebuilt.
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import tempfile
from pathlib import Path

from fabric.errors import EnvironmentNotReady

BUILD_LOCK = ".build.lock"  # one per cache directory: builds are rare, so they may as well queue


def cache_dir() -> Path:
    if os.environ.get("FABRIC_CACHE_DIR"):
        return Path(os.environ["FABRIC_CACHE_DIR"])
    if os.geteuid() == 0:
        return Path("/var/cache/fabric")
    return Path.home() / ".cache" / "fabric"


def compile_into_cache(target: Path, command: list[str], what: str) -> Path:
    """Return ``target``, first running the compiler ``command`` (without its ``-o``) to build it if it is missing.

    Concurrent callers (two pytest-xdist workers, Dask workers, two terminals) never see a
    half-written file: the compiler writes a temporary name in the same directory, renamed onto
    ``target`` when complete. A lock on the directory makes the others wait for that one build
    instead of each compiling the same thing. A failed compile raises :class:`EnvironmentNotReady` naming
    ``what`` and the compiler's first error.
    """
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.parent / BUILD_LOCK, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if target.exists():  # another process built it while this one waited
            return target
        fd, tmp = tempfile.mkstemp(prefix=target.name + ".", suffix=".tmp", dir=target.parent)
        os.close(fd)
        try:
            proc = subprocess.run([*command, "-o", tmp], capture_output=True, text=True)
            if proc.returncode != 0:
                first = next((line for line in proc.stderr.splitlines() if "error" in line), proc.stderr.strip())
                raise EnvironmentNotReady(f"compiling {what} failed ({first}); run 'sudo make setup'")
            os.chmod(tmp, 0o755)  # mkstemp's 0600 would keep other users from running or loading it
            os.replace(tmp, target)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    return target
