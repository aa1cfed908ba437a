"""Resolving a profile's host selectors against a fabric graph.

Selectors name host groups or roles (``{role: prefill}``), so this is where a profile meets a
design: a role no host group has, or a filter that leaves no host, is refused here with the
profile's file and key and the names that would be valid.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import networkx as nx
import numpy as np

from fabric import catalog
from fabric.catalog import Accelerator
from fabric.errors import WorkloadError
from fabric.topology import hosts as graph_hosts
from fabric.topology import hosts_by_group, hosts_by_role
from fabric.workloads.profile import Selector


@dataclass
class HostContext:
    """A fabric graph seen by the workload generator, plus endpoints resolved so far."""

    graph: nx.MultiGraph
    source: str
    resolved: dict[str, list[str]]
    current: str = ""          # pattern being generated: its own endpoints may be referred to bare
    next_request_id: int = 0
    # pattern name -> the compute timing its generator took from the catalog (recorded in run.json,
    # so economics uses the same figures the schedule was built with)
    compute: dict[str, dict] = field(default_factory=dict)
    # request timelines before the network (arrival, prefill start and end; fabric.rundir.tables
    # REQUEST_COLUMNS): queueing before prefill is part of TTFT, but no message carries it
    requests: list[dict[str, np.ndarray]] = field(default_factory=list)

    def request_ids(self, n: int) -> np.ndarray:
        """``n`` request ids unique across the workload (patterns draw them in profile order)."""
        ids = np.arange(self.next_request_id, self.next_request_id + n, dtype=np.int64)
        self.next_request_id += n
        return ids

    def select_as(self, pattern: str, endpoint: str, sel: Selector, minimum: int = 1) -> list[str]:
        """Select hosts and record them as ``<pattern>.<endpoint>`` for later references."""
        chosen = self.select(sel, minimum)
        self.resolved[f"{pattern}.{endpoint}"] = chosen
        return chosen

    def select_one(self, pattern: str, endpoint: str, sel: Selector) -> str:
        """Select exactly one host (refusing selectors that match several)."""
        chosen = self.select_as(pattern, endpoint, sel)
        if len(chosen) != 1:
            raise self.fail(sel.key, f"selects {len(chosen)} hosts ({sel.describe()}: {', '.join(chosen)}); "
                                     f"this endpoint is one host: add `index: 0` or `count: 1`")
        return chosen[0]


    @property
    def all_hosts(self) -> list[str]:
        return graph_hosts(self.graph)

    def edge(self, host: str) -> str:
        return self.graph.nodes[host]["edge"]

    def nic_bps(self, host: str) -> float:
        return float(self.graph.nodes[host]["nic_rate_bps"])

    def fail(self, key: str, problem: str) -> WorkloadError:
        return WorkloadError(self.source, key, problem)

    def accelerator(self, sel: Selector, hosts: list[str]) -> Accelerator:
        """The accelerator whose timing applies to ``hosts``: the override, else the design's."""
        if sel.accelerator:
            return catalog.accelerator(sel.accelerator)
        names = sorted({self.graph.nodes[h]["accelerator"] for h in hosts})
        if len(names) > 1:
            raise self.fail(sel.key, f"selects hosts of several accelerator types ({', '.join(names)}); select one "
                                     f"host group per endpoint or set `accelerator:` to time them as one type")
        try:
            acc = catalog.accelerator(names[0])
        except WorkloadError:
            raise self.fail(sel.key, f"the design's host group uses accelerator {names[0]!r}, which the catalog does "
                                     f"not know; set `accelerator:` here; valid: "
                                     f"{', '.join(sorted(catalog.load_accelerators()))}") from None
        if acc.is_cpu:
            raise self.fail(sel.key, f"selects front-end CPU servers ({acc.name}: {', '.join(hosts)}), which run no "
                                     f"model; select accelerator hosts (a role or group), or set `accelerator:`")
        return acc

    def frontend(self, sel: Selector, hosts: list[str]) -> Accelerator:
        """The CPU server type of front-end ``hosts`` (tokenize, detokenize): one catalog entry of kind cpu."""
        names = sorted({self.graph.nodes[h]["accelerator"] for h in hosts})
        known = {name.lower() for name in catalog.load_accelerators()}
        acc = catalog.accelerator(names[0]) if len(names) == 1 and names[0].lower() in known else None
        if acc is None or not acc.is_cpu:
            raise self.fail(sel.key, f"selects hosts of {', '.join(names)}; tokenize and detokenize run on front-end "
                                     f"CPU servers: select the design's frontend role or group (one CPU type)")
        return acc

    def select(self, sel: Selector, minimum: int = 1) -> list[str]:
        """Hosts matching ``sel``, in host-index order (or edge-interleaved when ``count`` is set)."""
        g = self.graph
        everyone = self.all_hosts
        if sel.all:
            chosen = list(everyone)
        elif sel.groups:
            table = hosts_by_group(g)
            for name in sel.groups:
                if name not in table:
                    raise self.fail(f"{sel.key}.group", f"got {name!r}; this design has no host group of that name; "
                                                        f"groups: {', '.join(sorted(table))}")
            chosen = [h for h in everyone if g.nodes[h]["group"] in sel.groups]
        elif sel.roles:
            table = hosts_by_role(g)
            for name in sel.roles:
                if name not in table:
                    raise self.fail(f"{sel.key}.role", f"got {name!r}; no host group of this design has that role; "
                                                       f"roles present: {', '.join(sorted(table))}")
            chosen = [h for h in everyone if g.nodes[h]["host_role"] in sel.roles]
        else:
            for name in sel.hosts:
                if name not in g.nodes or g.nodes[name]["role"] != "host":
                    raise self.fail(f"{sel.key}.hosts", f"got {name!r}; not a host of this design "
                                                        f"(hosts are {everyone[0]}..{everyone[-1]})")
            chosen = list(dict.fromkeys(sel.hosts))
        if sel.same_edge_as:
            edges = {self.edge(h) for h in self._ref(sel.same_edge_as)}
            chosen = [h for h in chosen if self.edge(h) in edges]
        if sel.other_edge_than:
            edges = {self.edge(h) for h in self._ref(sel.other_edge_than)}
            chosen = [h for h in chosen if self.edge(h) not in edges]
        if sel.exclude:
            drop = set(self._ref(sel.exclude))
            chosen = [h for h in chosen if h not in drop]
        if sel.count is not None:
            if len(chosen) < sel.count:
                raise self.fail(f"{sel.key}.count", f"got {sel.count}; only {len(chosen)} hosts match "
                                                    f"({sel.describe()}) on this design")
            chosen = _interleave_by_edge(chosen, self.edge)[:sel.count]
        if sel.index is not None:
            if sel.index >= len(chosen):
                raise self.fail(f"{sel.key}.index", f"got {sel.index}; only {len(chosen)} hosts match "
                                                    f"({sel.describe()}) on this design")
            chosen = [chosen[sel.index]]
        if len(chosen) < minimum:
            raise self.fail(sel.key, f"selects {len(chosen)} hosts ({sel.describe()}) on this design; "
                                     f"needs at least {minimum}")
        return chosen

    def _ref(self, ref: str) -> list[str]:
        if ref in self.resolved:
            return self.resolved[ref]
        return self.resolved[f"{self.current}.{ref}"]


def _interleave_by_edge(hosts: list[str], edge_of) -> list[str]:
    """Round-robin over edge switches, so ``count: 4`` spreads over leaves instead of filling one."""
    by_edge: dict[str, list[str]] = {}
    for h in hosts:
        by_edge.setdefault(edge_of(h), []).append(h)
    out, queues = [], list(by_edge.values())
    while any(queues):
        for q in queues:
            if q:
                out.append(q.pop(0))
    return out
