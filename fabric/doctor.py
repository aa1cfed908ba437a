"""Checks that this machine can emulate fabrics, and what each missing piece disables.

Kernel features are probed for real, inside a throw-away network namespace this process creates
and always deletes (``fabric-doctor-<pid>``); nothing outside it is touched.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    required: bool
    disables: str  # what does not work when this check fails

    def to_dict(self) -> dict:
        return {"name": self.name, "ok": self.ok, "detail": self.detail, "required": self.required,
                "disables": self.disables}


def _run(cmd: list[str], timeout: float = 10) -> tuple[bool, str]:
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, str(exc)
    out = (proc.stdout + proc.stderr).strip().splitlines()
    return proc.returncode == 0, out[0] if out else ""


def _mininet_check() -> Check:
    try:
        import mininet.net  # noqa: F401
        from mininet.net import VERSION
        return Check("mininet", True, f"Mininet {VERSION} importable", True, "all emulation")
    except ImportError as exc:
        return Check("mininet", False, f"cannot import mininet ({exc}); run 'sudo make setup'", True,
                     "all emulation")


def _tool_check(tool: str, required: bool, disables: str) -> Check:
    path = shutil.which(tool)
    return Check(tool, path is not None, path or f"'{tool}' not on PATH; run 'sudo make setup'", required, disables)


def _agents_check() -> Check:
    """The traffic agents are compiled C (fabric/emu/sender.c, receiver.c): built, or buildable here."""
    from fabric.emu import native
    disables = "all emulation (the traffic agents)"
    built = [native.binary_path(program) for program in ("sender", "receiver")]
    if all(path.exists() for path in built):
        return Check("traffic agents", True, "built: " + ", ".join(str(p) for p in built), True, disables)
    cc = native.compiler()
    if cc:
        return Check("traffic agents", True, f"not built yet; {cc} builds them on the first run", True, disables)
    return Check("traffic agents", False, "not built and no C compiler (cc) to build them; run 'sudo make setup'",
                 True, disables)


def _simulator_check() -> Check:
    """The packet simulator's model is a library compiled against the ns3 wheel (fabric/sim/native.py):
    built for this wheel and these sources, or buildable here."""
    from fabric.errors import EnvironmentNotReady
    from fabric.sim import native
    disables = "the packet simulator (--engine sim)"
    try:
        path = native.library_path()
    except EnvironmentNotReady as exc:
        return Check("simulator model", False, str(exc), False, disables)
    if path.exists():
        return Check("simulator model", True, f"built: {path}", False, disables)
    cxx = native.compiler()
    if cxx:
        return Check("simulator model", True, f"not built yet; {cxx} builds it on the first simulator run (~10 s)",
                     False, disables)
    return Check("simulator model", False, "not built and no C++ compiler (g++) to build it; run 'sudo make setup'",
                 False, disables)


def _kernel_checks() -> list[Check]:
    ns = f"fabric-doctor-{os.getpid()}"
    checks: list[Check] = []
    ok, detail = _run(["ip", "netns", "add", ns])
    checks.append(Check("netns", ok, "network namespaces work" if ok else detail, True, "all emulation"))
    if not ok:
        return checks
    try:
        def inns(*cmd: str) -> tuple[bool, str]:
            return _run(["ip", "netns", "exec", ns, *cmd])

        ok, detail = inns("ip", "link", "add", "fdv0", "type", "veth", "peer", "name", "fdv1")
        checks.append(Check("veth", ok, "veth pairs work" if ok else detail, True, "all emulation"))
        ok, detail = inns("tc", "qdisc", "add", "dev", "fdv0", "root", "handle", "1:", "htb", "default", "1")
        if ok:
            ok, detail = inns("tc", "class", "add", "dev", "fdv0", "parent", "1:", "classid", "1:1", "htb",
                              "rate", "10mbit", "quantum", "1514")
        checks.append(Check("htb", ok, "HTB shaping works" if ok else detail, True, "link shaping (all emulation)"))
        ok, detail = inns("tc", "qdisc", "add", "dev", "fdv0", "parent", "1:1", "handle", "10:", "pfifo",
                          "limit", "10")
        checks.append(Check("pfifo", ok, "pfifo buffers work" if ok else detail, True, "port buffers"))
        ok, detail = inns("ip", "link", "add", "fdifb0", "type", "ifb")
        checks.append(Check("ifb", ok, "IFB devices work" if ok else detail, True,
                            "scheduled fabrics (ingress VOQs)"))
        ok, detail = inns("ip", "link", "set", "fdifb0", "up")
        if ok:
            ok, detail = inns("tc", "qdisc", "add", "dev", "fdv1", "handle", "ffff:", "ingress")
        if ok:
            ok, detail = inns("tc", "filter", "add", "dev", "fdv1", "parent", "ffff:", "protocol", "ip", "prio", "1",
                              "u32", "match", "u32", "0", "0", "action", "mirred", "egress", "redirect", "dev", "fdifb0")
        checks.append(Check("ingress redirect (u32 + mirred)", ok, "ingress u32 filter with mirred redirect works"
                            if ok else detail, True, "scheduled fabrics (ingress VOQs)"))
        ok, detail = inns("nft", "add table ip fabricdoctor; "
                          "add chain ip fabricdoctor pre { type filter hook prerouting priority -150; }; "
                          "add rule ip fabricdoctor pre meta mark set numgen inc mod 4 offset 1")
        checks.append(Check("nftables numgen", ok, "nft numgen marking works" if ok else detail, True,
                            "spraying (leaf-spine spray and scheduled fabrics)"))
        ok, detail = inns("sysctl", "-w", "net.ipv4.fib_multipath_hash_policy=3",
                          "net.ipv4.fib_multipath_hash_fields=0x37", "net.ipv4.fib_multipath_hash_seed=7")
        checks.append(Check("multipath hash policy 3 + seed", ok,
                            "5-tuple ECMP hashing with a seed works" if ok else detail, True,
                            "deterministic ECMP (leaf-spine ecmp)"))
        ok, detail = inns("tc", "qdisc", "add", "dev", "fdv1", "root", "netem", "delay", "1ms")
        checks.append(Check("netem", ok, "netem present" if ok else f"netem missing ({detail})", False,
                            "optional impairments only (propagation delay, random loss); "
                            "fabric does not need it"))
    finally:
        _run(["ip", "netns", "del", ns])
    ovs = os.path.isdir("/sys/module/openvswitch") or _run(["modprobe", "-n", "-q", "openvswitch"])[0]
    checks.append(Check("openvswitch module", ovs, "present" if ovs else "Open vSwitch kernel module missing",
                        False, "nothing: fabric uses Linux routers, not OVS"))
    return checks


def run_checks() -> list[Check]:
    """Run every check; root-only probes are reported as failed (with why) when not root."""
    is_root = os.geteuid() == 0
    checks = [Check("root", is_root, "running as root" if is_root else "not root; run with sudo", True,
                    "all emulation (namespaces need root)")]
    checks.append(_mininet_check())
    checks.append(_tool_check("mnexec", True, "all emulation (Mininet enters namespaces with it)"))
    checks.append(_agents_check())
    checks.append(_simulator_check())
    for tool in ("ip", "tc", "nft", "ethtool"):
        checks.append(_tool_check(tool, True, "all emulation"))
    checks.append(_tool_check("iperf3", False, "the iperf3 cross-check test"))
    checks.append(_tool_check("tcpdump", False, "packet captures (fabric run --capture)"))
    if is_root and shutil.which("ip"):
        checks.extend(_kernel_checks())
    else:
        checks.append(Check("kernel features", False, "not probed: needs root and iproute2", True,
                            "all emulation"))
    psi = os.path.exists("/proc/pressure/cpu")
    checks.append(Check("cpu pressure (PSI)", psi, "/proc/pressure/cpu readable" if psi else "PSI missing",
                        False, "the CPU-pressure fidelity signal"))
    cpus = os.cpu_count() or 1
    checks.append(Check("cpus", cpus >= 2, f"{cpus} CPUs", False,
                        "timing fidelity: fewer than 2 CPUs makes most runs 'degraded'"))
    return checks


def emulation_ready(checks: list[Check]) -> bool:
    return all(c.ok for c in checks if c.required)


# --------------------------------------------------------------------------------------------
# The packet budget (measured by fabric.emu.calibrate, cached per machine and boot)
# --------------------------------------------------------------------------------------------

NOT_CALIBRATED = ("not calibrated on this boot yet: the first `fabric run` calibrates, "
                  "or `fabric doctor --calibrate`")


def budget_summary(cal) -> str:
    """One line about the calibrated budget, or how to get one."""
    if cal is None:
        return NOT_CALIBRATED
    return (f"{cal.budget_pps:,} packets/s ({cal.safety_margin:g} x {cal.sustained_pps:,} held; "
            f"measured {cal.measured_at} in {cal.wall_s:g} s)")


def ladder_lines(cal) -> list[str]:
    """The calibration's steps as a table, in the order they ran."""
    lines = [(f"{'offered pkt/s':>14}{'delivered pkt/s':>17}{'lost':>8}{'own loss':>10}"
              f"{'sender shortfall':>18}  {'fidelity':<10}  step")]
    for s in cal.ladder:
        short = "n/a" if s.get("sender_shortfall") is None else f"{s['sender_shortfall']:.1%}"
        lines.append(f"{s['offered_pps']:>14,.0f}{s['delivered_pps']:>17,}{s['lost']:>8.2%}"
                     f"{s['emulator_loss']:>10.2%}{short:>18}  {s['verdict']:<10}  {'holds' if s['ok'] else 'fails'}")
    return lines
