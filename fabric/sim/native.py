"""The compiled model (``capi.cpp`` with ``engine.h``, ``ddc.h``): build it once, load it with its C signatures.

Every simulation runs in a fresh process (:mod:`fabric.sim.child`), so whatever that process pays
to get the model ready is paid by every run. The model is therefore a shared library compiled by
the system C++ compiler against the ns3 wheel's headers and libraries, once, into fabric's cache
directory (:func:`fabric.cache.cache_dir`), under a name keyed by the sha256 of its sources, the
compile flags and the ns3 wheel (version and location): a changed source or another wheel builds
a new library; otherwise the one built is reused. ``python -m fabric.sim.native`` builds it and
prints its path (``make setup`` runs that); a run that finds it missing builds it first (~10 s).

:class:`Model` opens the library with ctypes and gives every function its C signature (from
``capi.cpp``). Arrays are passed as numpy arrays whose dtype and layout are checked at each call:
an array of another type is an error, never reinterpreted memory.
"""

from __future__ import annotations

import ctypes
import hashlib
import importlib.util
import shutil
import sys
from importlib import metadata
from pathlib import Path

import numpy as np

from fabric.cache import cache_dir, compile_into_cache
from fabric.errors import EnvironmentNotReady

HERE = Path(__file__).resolve().parent
ABI_SOURCE = HERE / "capi.cpp"
SOURCES = (ABI_SOURCE, HERE / "engine.h", HERE / "ddc.h")  # capi.cpp includes the two headers
NS3_MODULES = ("core", "network", "point-to-point")
NS3_LIBRARY = "libns3.44-{module}.so"
# No ns-3 defines (NS3_LOG_ENABLE, NS3_ASSERT_ENABLE): the model includes the headers as the
# cppyy-compiled model did, so inline ns-3 code behaves as it did then.
COMPILE_FLAGS = ["-O2", "-fPIC", "-shared", "-std=c++20"]


def compiler() -> str | None:
    return shutil.which("g++") or shutil.which("c++")


def ns3_wheel_version() -> str:
    """The installed ns3 wheel's version (without importing ns-3)."""
    try:
        return metadata.version("ns3")
    except metadata.PackageNotFoundError:
        raise EnvironmentNotReady("the packet simulator needs the ns3 wheel: pip install ns3==3.44.post0") from None


def ns3_prefix() -> Path:
    """The ns3 wheel's install directory (``include/``, ``lib64/`` or ``lib/``), found without importing ns-3."""
    spec = importlib.util.find_spec("ns3")
    if spec is None or not spec.submodule_search_locations:
        raise EnvironmentNotReady("the packet simulator needs the ns3 wheel: pip install ns3==3.44.post0")
    return Path(list(spec.submodule_search_locations)[0])


def ns3_library_dir(prefix: Path) -> Path:
    for variant in ("lib64", "lib"):
        if (prefix / variant / NS3_LIBRARY.format(module="core")).exists():
            return prefix / variant
    raise EnvironmentNotReady(f"the ns3 wheel at {prefix} has no {NS3_LIBRARY.format(module='core')}; "
                              "reinstall it: pip install --force-reinstall ns3==3.44.post0")


def ns3_wheel_identity(prefix: Path) -> str:
    return f"ns3 {ns3_wheel_version()} at {prefix}"


def library_path() -> Path:
    """Where the model built from the current sources against the installed ns3 wheel lives (it may not exist yet)."""
    key = hashlib.sha256()
    for source in SOURCES:
        key.update(source.read_bytes())
    key.update(" ".join(COMPILE_FLAGS).encode())
    key.update(ns3_wheel_identity(ns3_prefix()).encode())
    return cache_dir() / f"libfabricsim-{key.hexdigest()[:16]}.so"


def model_library() -> Path:
    """Return the model library, compiling it first if these sources have not been built against this ns3 wheel."""
    target = library_path()
    if target.exists():
        return target
    cxx = compiler()
    if cxx is None:
        raise EnvironmentNotReady("no C++ compiler (g++) to build the packet simulator's model; run 'sudo make setup'")
    prefix = ns3_prefix()
    libs = ns3_library_dir(prefix)
    # rpath: the child finds the wheel's libraries without LD_LIBRARY_PATH.
    command = [cxx, *COMPILE_FLAGS, f"-I{prefix / 'include'}", str(ABI_SOURCE), f"-L{libs}", f"-Wl,-rpath,{libs}",
               *(f"-l:{NS3_LIBRARY.format(module=m)}" for m in NS3_MODULES)]
    return compile_into_cache(target, command, "the packet simulator's model")


# --------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------

def array(dtype, writable: bool = False) -> type:
    """The ctypes type of a 1-D, C-contiguous numpy array of ``dtype`` passed as a pointer to its data.

    A call given an array of another dtype, shape or layout raises :class:`ctypes.ArgumentError`
    instead of handing C++ memory of another type."""
    flags = "C_CONTIGUOUS,WRITEABLE" if writable else "C_CONTIGUOUS"
    return np.ctypeslib.ndpointer(dtype=dtype, ndim=1, flags=flags)


i32, u32, i64, u64, size = ctypes.c_int32, ctypes.c_uint32, ctypes.c_int64, ctypes.c_uint64, ctypes.c_size_t
I32, U32, I64, F64 = array(np.int32), array(np.uint32), array(np.int64), array(np.float64)
OUT_U8, OUT_I16, OUT_U32 = array(np.uint8, True), array(np.int16, True), array(np.uint32, True)
OUT_I64, OUT_U64, OUT_F64 = array(np.int64, True), array(np.uint64, True), array(np.float64, True)
SAMPLE_COLUMNS = [OUT_I64, OUT_U32, OUT_U64, OUT_U64, OUT_U64, OUT_U64, OUT_U64]  # t, port, 5 counters

# name (without the fabricsim_ prefix): (argument types, result type); as declared in capi.cpp.
SIGNATURES = {
    "SetTimeResolutionPs": ([], None),
    "BuildNodes": ([u32, I32, I32, u32, u64, i32, u32, u32, i64], None),
    "BuildLinks": ([u32, I32, I32, F64, I64, I64, I64, I32, I32], None),
    "BuildRoutes": ([u32, I32, I32, I32, u32, I32, I32], None),
    "FlowHashes": ([u32, u32, u32, U32, U32, u32, U32, u32, OUT_U32], None),
    "BuildSenders": ([u32, u32, I32, I32, I64, I64, I32, I32, I32, U32], None),
    "InstallScheduled": ([u32, u64, u32, u64, u32, i64, i64, i64, F64, F64, u32, I32, I32], None),
    "StartSampling": ([i64, i64], None),
    "RunForPs": ([i64], None),
    "EventCount": ([], u64),
    "NowPs": ([], i64),
    "Finished": ([], ctypes.c_bool),
    "SentPackets": ([], u64),
    "LastSendPs": ([], i64),
    "SampleNow": ([], None),
    "CopyRecords": ([OUT_I64, OUT_I64, OUT_I16, OUT_U8, OUT_U8], None),
    "SampleRows": ([], size),
    "CopySamples": (SAMPLE_COLUMNS, None),
    "Accounting": ([OUT_F64, size], size),
    "VoqSampleRows": ([], size),
    "CopyVoqSamples": (SAMPLE_COLUMNS, None),
    "ScheduledStats": ([OUT_F64, size], size),
}


class Model:
    """The loaded model: ``model.BuildNodes(...)`` calls ``fabricsim_BuildNodes`` with checked arguments."""

    def __init__(self, path: Path | str):
        self.path = Path(path)
        library = ctypes.CDLL(str(self.path))
        for name, (argtypes, restype) in SIGNATURES.items():
            function = getattr(library, f"fabricsim_{name}")
            function.argtypes = argtypes
            function.restype = restype
            setattr(self, name, function)

    def figures(self, name: str, labels: tuple[str, ...]) -> dict[str, int]:
        """A fixed list of counts the model fills into a buffer (``Accounting``, ``ScheduledStats``), by label."""
        out = np.zeros(len(labels), dtype=np.float64)
        n = getattr(self, name)(out, len(out))
        if n != len(labels):
            raise RuntimeError(f"the model's {name} gives {n} figures where fabric names {len(labels)} "
                               "(fabric/sim/capi.cpp and its caller disagree)")
        return dict(zip(labels, (int(x) for x in out)))


if __name__ == "__main__":
    try:
        print(model_library())
    except EnvironmentNotReady as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(1)
