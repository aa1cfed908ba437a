"""Realising a fabric graph as Linux routers in network namespaces, and tearing it down.

Mininet manages namespaces and veth pairs only: ``Mininet(topo=None, controller=None,
build=False)``, every host and switch a plain :class:`mininet.node.Node` (a shell in its own
network namespace), links created directly between namespaces. No Open vSwitch, no controller.
Configuration commands come from :mod:`fabric.emu.plan` and run inside each namespace; a failing
command stops the build with an :class:`~fabric.errors.EmulationError` naming node and command.

Teardown kills only the shells this object started (their namespaces, and with them every veth,
qdisc, route and nft table of the run, vanish with them). Never Mininet's machine-wide cleanup.
"""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import networkx as nx

from fabric.emu.plan import NodePlan
from fabric.errors import EmulationError, EnvironmentNotReady


class EmulatedFabric:
    """The namespaces and links of one run. Use as a context manager: teardown is guaranteed."""

    def __init__(self, g: nx.MultiGraph, plans: dict[str, NodePlan], workdir: Path):
        self.g = g
        self.plans = plans
        self.workdir = Path(workdir)
        self.nodes: dict = {}
        self.pids: dict[str, int] = {}
        self.net = None

    # -- build ---------------------------------------------------------------------------
    def build(self, progress=None) -> None:
        if os.geteuid() != 0:
            raise EnvironmentNotReady("emulation needs root (network namespaces); run with sudo")
        try:
            from mininet.link import Link
            from mininet.log import setLogLevel
            from mininet.net import Mininet
            from mininet.node import Node
        except ImportError as exc:
            raise EnvironmentNotReady(f"Mininet is not importable ({exc}); run 'sudo make setup'") from None
        setLogLevel("error")
        self.net = Mininet(topo=None, controller=None, build=False, autoSetMacs=False,
                           autoStaticArp=False, waitConnected=False)
        for name in self.g.nodes:
            node = self.net.addHost(name, cls=Node, inNamespace=True)
            self.nodes[name] = node
            self.pids[name] = node.pid
            self._progress(progress)
        for u, v, data in sorted(self.g.edges(data=True), key=lambda e: e[2]["link_id"]):
            try:
                Link(self.nodes[u], self.nodes[v], intfName1=data["ifname"][u], intfName2=data["ifname"][v])
            except Exception as exc:  # Mininet raises bare Exception on veth failures
                raise EmulationError(f"creating link {data['link_id']}: {exc}") from None
        for name in self.g.nodes:
            self._configure(name, self.plans[name])
            self._progress(progress)

    @staticmethod
    def _progress(progress) -> None:
        if progress is not None:
            progress()

    def run_in(self, node: str, argv: list[str], stdin: str | None = None) -> str:
        """Run a command inside ``node``'s namespace; raise EmulationError if it fails."""
        cmd = ["mnexec", "-a", str(self.pids[node]), *argv]
        proc = subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=60)
        if proc.returncode != 0:
            detail = (proc.stderr or proc.stdout).strip().splitlines()
            raise EmulationError(f"{node}: '{' '.join(argv)}' failed: {detail[0] if detail else proc.returncode}")
        return proc.stdout

    def _batch(self, node: str, tool: str, lines: list[str]) -> None:
        if not lines:
            return
        with tempfile.NamedTemporaryFile("w", dir=self.workdir, suffix=f".{node}.{tool}", delete=False) as fh:
            fh.write("\n".join(lines) + "\n")
            path = fh.name
        try:
            self.run_in(node, [tool, "-batch", path])
        finally:
            os.unlink(path)

    def _configure(self, name: str, plan: NodePlan) -> None:
        if plan.sysctl:
            self.run_in(name, ["sysctl", "-q", "-w", *plan.sysctl])
        self._batch(name, "ip", plan.ip)
        for line in plan.ethtool:
            self.run_in(name, line.split())
        self._batch(name, "tc", plan.tc)
        if plan.nft:
            self.run_in(name, ["nft", "-f", "-"], stdin="\n".join(plan.nft) + "\n")

    # -- teardown ------------------------------------------------------------------------
    def teardown(self) -> None:
        """Kill this run's shells; their namespaces and everything in them go with them."""
        for name, node in list(self.nodes.items()):
            shell = getattr(node, "shell", None)
            if shell is not None and shell.poll() is None:
                try:
                    os.killpg(shell.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + 5
        for node in self.nodes.values():
            shell = getattr(node, "shell", None)
            if shell is None:
                continue
            try:
                shell.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
            for closer in (lambda: node.stdin.close(), lambda: os.close(node.slave)):
                try:
                    closer()
                except (OSError, AttributeError):
                    pass
        self.nodes.clear()

    def __enter__(self) -> "EmulatedFabric":
        return self

    def __exit__(self, *exc) -> None:
        self.teardown()
