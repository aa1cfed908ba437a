"""``fabric.doctor`` probing the real kernel (root only): verdicts match the kernel, nothing left behind."""

from __future__ import annotations

import gzip
import os
import shutil
import subprocess
from pathlib import Path

import pytest

import fabric.doctor
from fabric.doctor import emulation_ready, run_checks

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("ip"),
                                reason="doctor's kernel probes need root and iproute2")


def _kernel_config() -> dict[str, str] | None:
    """CONFIG_* options of the running kernel, when /proc/config.gz exposes them."""
    path = Path("/proc/config.gz")
    if not path.exists():
        return None
    options = {}
    for line in gzip.decompress(path.read_bytes()).decode().splitlines():
        if line.startswith("CONFIG_"):
            key, _, value = line.partition("=")
            options[key] = value
        elif line.startswith("# CONFIG_") and line.endswith(" is not set"):
            options[line[2:].split()[0]] = "n"
    return options


def _netns_names() -> set[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    return {line.split()[0] for line in out.splitlines() if line.strip()}


@pytest.fixture(scope="module")
def probe():
    """Run the checks once, recording the namespace doctor created for its probes."""
    created: list[str] = []
    real_run = fabric.doctor._run

    def spy(cmd, timeout=10):
        if cmd[:3] == ["ip", "netns", "add"]:
            created.append(cmd[3])
        return real_run(cmd, timeout)

    fabric.doctor._run = spy
    try:
        checks = {c.name: c for c in run_checks()}
    finally:
        fabric.doctor._run = real_run
    return checks, created


def test_required_checks_ok(probe):
    checks, _ = probe
    failing = [f"{c.name}: {c.detail}" for c in checks.values() if c.required and not c.ok]
    assert not failing, "this machine should be ready to emulate"
    assert emulation_ready(list(checks.values()))
    for name in ("root", "mininet", "netns", "veth", "htb", "pfifo", "ifb", "nftables numgen",
                 "multipath hash policy 3 + seed"):
        assert checks[name].ok and checks[name].required, name


def _expect_from_config(option: str) -> bool:
    config = _kernel_config()
    if config is None:
        pytest.skip("kernel config not readable (/proc/config.gz missing); cannot tell what to expect")
    value = config.get(option, "n")
    if value == "m":
        pytest.skip(f"{option} is a module; whether it loads depends on installed modules")
    return value == "y"


def test_netem_verdict_matches_kernel(probe):
    checks, _ = probe
    present = _expect_from_config("CONFIG_NET_SCH_NETEM")
    netem = checks["netem"]
    assert not netem.required
    assert netem.ok is present, netem.detail
    if not present:
        assert "netem missing" in netem.detail


def test_openvswitch_verdict_matches_kernel(probe):
    checks, _ = probe
    present = _expect_from_config("CONFIG_OPENVSWITCH")
    ovs = checks["openvswitch module"]
    assert not ovs.required
    assert ovs.ok is present, ovs.detail


def test_probe_namespace_is_removed(probe):
    _, created = probe
    assert created == [f"fabric-doctor-{os.getpid()}"], "doctor should probe inside one namespace of its own"
    assert created[0] not in _netns_names()


def test_no_stale_doctor_namespaces(probe):
    # Another user's doctor may be probing right now (its pid is alive); a dead pid's namespace is a leak.
    stale = [name for name in _netns_names() if name.startswith("fabric-doctor-")
             and not Path(f"/proc/{name.rsplit('-', 1)[-1]}").exists()]
    assert not stale, f"leaked probe namespaces: {stale}"
