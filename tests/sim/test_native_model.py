"""The compiled model library without root: built once into the cache, keyed by what it is built from, typed calls.

The build needs a C++ compiler and the ns3 wheel; the tests that build skip without them.
"""

from __future__ import annotations

import ctypes

import numpy as np
import pytest

from fabric.errors import EnvironmentNotReady
from fabric.sim import native
from tests.sim.conftest import NS3_MISSING

needs_build = pytest.mark.skipif(NS3_MISSING or native.compiler() is None,
                                 reason="building the model needs the ns3 wheel and a C++ compiler (g++)")


@pytest.fixture(scope="module")
def library(tmp_path_factory):
    """The model built into an empty cache directory of its own."""
    if NS3_MISSING or native.compiler() is None:
        pytest.skip("building the model needs the ns3 wheel and a C++ compiler (g++)")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FABRIC_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
        return native.model_library()


@needs_build
def test_the_library_builds_once_into_the_cache(library, monkeypatch):
    monkeypatch.setenv("FABRIC_CACHE_DIR", str(library.parent))
    assert library.exists() and library.name.startswith("libfabricsim-") and library.suffix == ".so"
    assert native.library_path() == library
    mtime = library.stat().st_mtime_ns
    assert native.model_library() == library and library.stat().st_mtime_ns == mtime  # reused, not rebuilt
    assert not list(library.parent.glob("*.tmp"))


@needs_build
def test_a_changed_source_flag_or_wheel_is_another_library(library, monkeypatch, tmp_path):
    monkeypatch.setenv("FABRIC_CACHE_DIR", str(library.parent))
    changed = tmp_path / "engine.h"
    changed.write_bytes(native.SOURCES[1].read_bytes() + b"\n// changed\n")
    with monkeypatch.context() as m:
        m.setattr(native, "SOURCES", (native.SOURCES[0], changed, native.SOURCES[2]))
        assert native.library_path() != library
    with monkeypatch.context() as m:
        m.setattr(native, "COMPILE_FLAGS", [*native.COMPILE_FLAGS, "-g"])
        assert native.library_path() != library
    with monkeypatch.context() as m:
        m.setattr(native, "ns3_wheel_identity", lambda prefix: "ns3 3.45 at /elsewhere")
        assert native.library_path() != library
    assert native.library_path() == library


def _flow_hash(seed: int, mask: int, src_ip: int, dst_ip: int, proto: int, sport: int, dport: int) -> int:
    """engine.h's FlowHash, in Python: what the library must compute from the arguments in their order."""
    m = 0xFFFFFFFF

    def fmix(h):
        h ^= h >> 16
        h = (h * 0x85EBCA6B) & m
        h ^= h >> 13
        h = (h * 0xC2B2AE35) & m
        return h ^ (h >> 16)

    def combine(h, v):
        return fmix(h ^ ((v + 0x9E3779B9 + (h << 6) + (h >> 2)) & m))

    h = fmix(seed ^ 0x5BD1E995)
    for bit, value in ((0x01, src_ip), (0x02, dst_ip), (0x04, proto), (0x10, sport), (0x20, dport)):
        if mask & bit:
            h = combine(h, value)
    return h


@needs_build
def test_calls_pass_arrays_and_scalars_in_order(library):
    model = native.Model(library)
    src = np.array([0x0A000001, 0x0A000102], dtype=np.uint32)
    dst = np.array([0x0A000203, 0x0A000001], dtype=np.uint32)
    sport = np.array([49152, 50001], dtype=np.uint32)
    out = np.zeros(2, dtype=np.uint32)
    model.FlowHashes(2, 7, 0x37, src, dst, 17, sport, 47000, out)
    assert out.tolist() == [_flow_hash(7, 0x37, int(s), int(d), 17, int(p), 47000) for s, d, p in zip(src, dst, sport)]


@needs_build
def test_a_wrong_array_type_is_refused_at_the_call(library):
    model = native.Model(library)
    ok = np.zeros(2, dtype=np.uint32)
    with pytest.raises(ctypes.ArgumentError, match="uint32"):
        model.FlowHashes(2, 7, 0x37, ok.astype(np.int64), ok, 17, ok, 47000, ok)
    with pytest.raises(ctypes.ArgumentError, match="C_CONTIGUOUS"):
        model.FlowHashes(2, 7, 0x37, ok, ok, 17, ok, 47000, np.zeros(4, dtype=np.uint32)[::2])


def test_array_types_check_dtype_layout_and_writability():
    int32s = native.array(np.int32)
    assert int32s.from_param(np.zeros(3, dtype=np.int32))
    with pytest.raises(TypeError, match="int32"):
        int32s.from_param(np.zeros(3, dtype=np.int64))
    with pytest.raises(TypeError, match="C_CONTIGUOUS"):
        int32s.from_param(np.zeros(6, dtype=np.int32)[::2])
    frozen = np.zeros(3, dtype=np.int64)
    frozen.flags.writeable = False
    with pytest.raises(TypeError, match="WRITEABLE"):
        native.array(np.int64, writable=True).from_param(frozen)


def test_no_compiler_says_how_to_fix(tmp_path, monkeypatch):
    if NS3_MISSING:
        pytest.skip("the packet simulator needs the ns3 wheel")
    monkeypatch.setenv("FABRIC_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(native, "compiler", lambda: None)
    with pytest.raises(EnvironmentNotReady, match="g\\+\\+.*sudo make setup"):
        native.model_library()


def test_a_failed_compile_says_what_failed(tmp_path, monkeypatch):
    if NS3_MISSING or native.compiler() is None:
        pytest.skip("building the model needs the ns3 wheel and a C++ compiler (g++)")
    broken = tmp_path / "capi.cpp"
    broken.write_text("this is not C++\n")
    monkeypatch.setenv("FABRIC_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(native, "ABI_SOURCE", broken)
    monkeypatch.setattr(native, "SOURCES", (broken,))
    with pytest.raises(EnvironmentNotReady, match="compiling the packet simulator's model failed .*error"):
        native.model_library()
    assert not [p for p in (tmp_path / "cache").iterdir() if p.name != ".build.lock"]  # nothing half-built left


@needs_build
def test_doctor_says_whether_the_model_is_built_or_buildable(library, monkeypatch, tmp_path):
    from fabric.doctor import _simulator_check
    monkeypatch.setenv("FABRIC_CACHE_DIR", str(library.parent))
    check = _simulator_check()
    assert check.ok and check.detail == f"built: {library}" and not check.required   # emulation does not need it
    monkeypatch.setenv("FABRIC_CACHE_DIR", str(tmp_path))
    check = _simulator_check()
    assert check.ok and check.detail.startswith("not built yet;") and "first simulator run" in check.detail
    monkeypatch.setattr(native, "compiler", lambda: None)
    check = _simulator_check()
    assert not check.ok and "run 'sudo make setup'" in check.detail
