"""Fabric designs (``topologies/*.yaml``) loaded into typed, validated objects.

Two kinds exist:

* ``leaf-spine`` — an Ethernet Clos: leaves, spines, hosts per leaf, parallel links per
  leaf–spine pair, per-port buffers, and load balancing by 5-tuple ECMP (with hash seed) or
  per-packet spraying.
* ``scheduled`` — a DDC-style scheduled fabric: NCPs (edge boxes holding a virtual output queue
  per egress port), NCFs (fabric boxes), a credit scheduler with a tick, fabric links run at
  rate × speedup, traffic sprayed over all fabric links.

Every host is one accelerator with its scale-out NICs: ``nic_count`` NICs of ``nic_rate`` each,
per host group (the group's own keys, else the design's ``host_link_rate`` as one NIC, else the
accelerator's catalog entry), striped into one host link of ``nic_count × nic_rate``.

Units are parsed here, once: rates in bit/s, sizes in bytes, durations in ns.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from pathlib import Path

from fabric.errors import SpecError
from fabric.yamlspec import Section, load_yaml_mapping

KINDS = ("leaf-spine", "scheduled")
LOAD_BALANCING_MODES = ("ecmp", "spray")
HOST_ROLES = ("prefill", "decode", "expert", "tensor", "any", "frontend")
# The role of CPU front-end servers (a catalog entry of kind cpu): tokenize and detokenize, no model.
FRONTEND_ROLE = "frontend"
HASH_FIELDS = ("src_ip", "dst_ip", "proto", "src_port", "dst_port")
# Bits of net.ipv4.fib_multipath_hash_fields for each field (kernel ip-sysctl docs).
HASH_FIELD_BITS = {"src_ip": 0x01, "dst_ip": 0x02, "proto": 0x04, "src_port": 0x10, "dst_port": 0x20}
SCHEDULER_POLICIES = ("fair", "weighted")
# How a host with several NICs spreads one message over them. "split": every message is cut into
# equal shares, one per NIC, as collective libraries (NCCL, RCCL, HCCL) stripe a transfer over the
# rails they have, so at the link level the host has one link of nic_count x nic_rate.
NIC_STRIPING_MODES = ("split",)
# Named by people but not modelled: refused rather than approximated by "split" (a per-message
# round robin would finish a lone message at ONE NIC's rate, which the single host link cannot show).
NIC_STRIPING_NOT_MODELLED = ("round_robin",)
# Where a host group's NICs came from, in order of precedence (docs/design.md).
NIC_SOURCES = ("group", "host_link_rate", "catalog")
DEFAULT_LINK_DELAY_NS = 500  # ~100 m of fibre: a link inside one data hall


@dataclass(frozen=True)
class HostGroup:
    """Consecutive hosts sharing an accelerator type, a serving role and their scale-out NICs.

    Each host has ``nic_count`` NICs of ``nic_rate_bps`` each; ``nic_from`` says where they came
    from (one of :data:`NIC_SOURCES`). ``nic_rate_bps == 0`` only in a design recorded before
    groups had NICs; :meth:`FabricSpec.from_dict` fills it from ``host_link_rate_bps``.
    """

    name: str
    count: int
    accelerator: str
    role: str
    nic_count: int = 1
    nic_rate_bps: int = 0
    nic_from: str = "host_link_rate"

    @property
    def host_rate_bps(self) -> int:
        """One host's link rate: its NICs striped together (``nic_striping: split``)."""
        return self.nic_count * self.nic_rate_bps


@dataclass(frozen=True)
class LoadBalancing:
    mode: str = "ecmp"
    hash_seed: int = 1
    hash_fields: tuple[str, ...] = HASH_FIELDS

    @property
    def hash_fields_mask(self) -> int:
        """Value for the ``fib_multipath_hash_fields`` sysctl (0x37 for the full 5-tuple)."""
        return sum(HASH_FIELD_BITS[f] for f in self.hash_fields)


@dataclass(frozen=True)
class SchedulerSpec:
    tick_ns: int = 5_000_000
    policy: str = "fair"
    grant_fraction: float = 0.98
    weights: tuple[tuple[str, float], ...] = ()


@dataclass(frozen=True)
class FabricSpec:
    """A validated fabric design.

    Leaf-spine designs use ``edges``/``cores`` for leaves/spines; scheduled designs use them for
    NCPs/NCFs. The generic names keep the graph builder and emulator shared; ``edge_role`` and
    ``core_role`` say which is which.
    """

    name: str
    kind: str
    source: str
    description: str
    edges: int
    cores: int
    hosts_per_edge: int
    links_per_pair: int
    host_link_rate_bps: int
    fabric_link_rate_bps: int
    buffer_per_port_bytes: int
    host_groups: tuple[HostGroup, ...]
    load_balancing: LoadBalancing = field(default_factory=LoadBalancing)
    non_blocking: bool = False
    # scheduled fabrics only
    fabric_speedup: float = 1.0
    voq_depth_bytes: int = 0
    scheduler: SchedulerSpec | None = None
    content_sha256: str = ""
    # propagation delay of every link (the packet simulator; the emulator adds none)
    link_delay_ns: int = DEFAULT_LINK_DELAY_NS
    nic_striping: str = "split"

    @property
    def edge_role(self) -> str:
        return "leaf" if self.kind == "leaf-spine" else "ncp"

    @property
    def core_role(self) -> str:
        return "spine" if self.kind == "leaf-spine" else "ncf"

    @property
    def hosts(self) -> int:
        return self.edges * self.hosts_per_edge

    @property
    def accelerator_hosts(self) -> int:
        """Hosts that carry an accelerator: every host but the front-end (CPU) servers."""
        return self.hosts - self.frontend_hosts

    @property
    def frontend_hosts(self) -> int:
        return sum(g.count for g in self.host_groups if g.role == FRONTEND_ROLE)

    @property
    def effective_fabric_link_rate_bps(self) -> int:
        """Rate of one edge–core link as built: × speedup on scheduled fabrics."""
        return int(round(self.fabric_link_rate_bps * self.fabric_speedup))

    @property
    def spraying(self) -> bool:
        return self.kind == "scheduled" or self.load_balancing.mode == "spray"

    @property
    def host_rates_bps(self) -> tuple[int, ...]:
        """Every host's link rate (all its NICs), in host index order."""
        return tuple(grp.host_rate_bps for grp in self.host_groups for _ in range(grp.count))

    @property
    def mixed_host_rates(self) -> bool:
        """True when hosts' links do not all run at one rate."""
        return len(set(self.host_rates_bps)) > 1

    def edge_host_rates_bps(self) -> list[int]:
        """Sum of the host link rates under each edge switch (hosts fill edges in order)."""
        rates = self.host_rates_bps
        return [sum(rates[i * self.hosts_per_edge:(i + 1) * self.hosts_per_edge]) for i in range(self.edges)]

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> FabricSpec:
        """The inverse of :meth:`to_dict` (a run directory stores the design this way); keys a
        newer or older writer added or left out take the field's default. Raises ``TypeError``
        or ``ValueError`` when a required field is missing or malformed."""
        known = set(cls.__dataclass_fields__)
        fields = {k: v for k, v in data.items() if k in known}
        # A design recorded before groups had NICs: every host had one NIC at host_link_rate.
        fields["host_groups"] = tuple(
            HostGroup(**{**g, "nic_rate_bps": g.get("nic_rate_bps") or fields.get("host_link_rate_bps", 0)})
            for g in fields.get("host_groups", ()))
        lb = fields.get("load_balancing")
        if isinstance(lb, dict):
            fields["load_balancing"] = LoadBalancing(lb.get("mode", "ecmp"), lb.get("hash_seed", 1),
                                                     tuple(lb.get("hash_fields", ())) or HASH_FIELDS)
        sched = fields.get("scheduler")
        if isinstance(sched, dict):
            fields["scheduler"] = SchedulerSpec(sched.get("tick_ns", SchedulerSpec.tick_ns),
                                                sched.get("policy", SchedulerSpec.policy),
                                                sched.get("grant_fraction", SchedulerSpec.grant_fraction),
                                                tuple(tuple(w) for w in sched.get("weights", ())))
        return cls(**fields)


def load_fabric_spec(path: str | Path) -> FabricSpec:
    """Load and validate one fabric design file.

    Raises
    ------
    SpecError
        Naming the file, the key and what would be valid.
    """
    path = Path(path)
    data = load_yaml_mapping(path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return parse_fabric_spec(data, str(path), digest)


def parse_fabric_spec(data: dict, source: str = "<spec>", digest: str = "") -> FabricSpec:
    """Validate an already-parsed mapping (see :func:`load_fabric_spec`)."""
    top = Section(data, source)
    kind = top.choice("kind", KINDS)
    name = top.text("name", Path(source).stem)
    description = str(top.raw("description", "")).strip()
    if kind == "leaf-spine":
        edges = top.integer("leaves", minimum=1)
        cores = top.integer("spines", minimum=1)
        hosts_per_edge = top.integer("hosts_per_leaf", minimum=1)
    else:
        edges = top.integer("ncps", minimum=1)
        cores = top.integer("ncfs", minimum=1)
        hosts_per_edge = top.integer("hosts_per_ncp", minimum=1)
    links_per_pair = top.integer("links_per_pair", 1, minimum=1, maximum=16)
    # Optional: without it every host group takes its own nic_rate or its accelerator's catalog NICs.
    host_rate = top.rate_bps("host_link_rate", None)
    fabric_rate = top.rate_bps("fabric_link_rate")
    buffer_bytes = top.size_bytes("buffer_per_port")
    non_blocking = top.boolean("non_blocking", False)
    link_delay_ns = top.duration_ns("link_delay", DEFAULT_LINK_DELAY_NS)
    striping = top.raw("nic_striping", "split")
    if striping in NIC_STRIPING_NOT_MODELLED:
        raise top.fail("nic_striping", f"got {striping!r}; this striping is not modelled yet (a host's NICs are one "
                                       f"link at nic_count x nic_rate); use 'split' or leave nic_striping out")
    striping = top.choice("nic_striping", NIC_STRIPING_MODES, "split")

    load_balancing = LoadBalancing()
    speedup, voq_depth, scheduler = 1.0, 0, None
    if kind == "leaf-spine":
        lb = top.section("load_balancing", {"mode": "ecmp"})
        mode = lb.choice("mode", LOAD_BALANCING_MODES)
        seed = lb.integer("hash_seed", 1, minimum=0, maximum=2**32 - 1)
        fields = lb.raw("hash_fields", list(HASH_FIELDS))
        if not isinstance(fields, list) or not fields or any(f not in HASH_FIELDS for f in fields):
            raise lb.fail("hash_fields", f"got {fields!r}; expected a list drawn from {', '.join(HASH_FIELDS)}")
        lb.finish()
        load_balancing = LoadBalancing(mode, seed, tuple(fields))
    else:
        speedup = top.number("fabric_speedup", 1.0, minimum=1.0, maximum=4.0)
        voq_depth = top.size_bytes("voq_depth")
        sched = top.section("scheduler", {})
        policy = sched.choice("policy", SCHEDULER_POLICIES, "fair")
        tick_ns = sched.duration_ns("tick", 5_000_000)
        if not 100_000 <= tick_ns <= 1_000_000_000:
            raise sched.fail("tick", f"got {sched.data.get('tick')!r}; must be between 100us and 1s")
        grant = sched.number("grant_fraction", 0.98, minimum=0.5, maximum=1.0)
        weights_raw = sched.raw("weights", {})
        if not isinstance(weights_raw, dict) or any(
                isinstance(w, bool) or not isinstance(w, (int, float)) or w <= 0 for w in weights_raw.values()):
            raise sched.fail("weights", f"got {weights_raw!r}; expected a mapping of host group name to positive weight")
        sched.finish()
        scheduler = SchedulerSpec(tick_ns, policy, grant, tuple(sorted(weights_raw.items())))
        # Scheduled fabrics always spray over fabric links; accept only that, if stated.
        lb = top.section("load_balancing", {"mode": "spray"})
        if lb.raw("mode", "spray") != "spray":
            raise lb.fail("mode", f"got {lb.data['mode']!r}; a scheduled fabric always sprays over its fabric "
                                  f"links: use 'spray' or leave load_balancing out")
        lb.finish()
        load_balancing = LoadBalancing(mode="spray")

    hosts = edges * hosts_per_edge
    groups = _parse_host_groups(top, hosts, host_rate)
    top.finish()
    if host_rate is None:
        # Old callers read one host rate: the one every host has, or the fastest of a mix (each
        # host's own rate is on the graph as nic_rate_bps).
        host_rate = max(grp.host_rate_bps for grp in groups)

    if scheduler is not None:
        names = {g.name for g in groups}
        for group_name, _ in scheduler.weights:
            if group_name not in names:
                raise SpecError(source, f"scheduler.weights.{group_name}",
                                f"no host group named {group_name!r}; groups are {', '.join(sorted(names))}")

    spec = FabricSpec(
        name=name, kind=kind, source=source, description=description,
        edges=edges, cores=cores, hosts_per_edge=hosts_per_edge, links_per_pair=links_per_pair,
        host_link_rate_bps=host_rate, fabric_link_rate_bps=fabric_rate,
        buffer_per_port_bytes=buffer_bytes, host_groups=groups, load_balancing=load_balancing,
        non_blocking=non_blocking, fabric_speedup=speedup, voq_depth_bytes=voq_depth,
        scheduler=scheduler, content_sha256=digest, link_delay_ns=link_delay_ns, nic_striping=striping,
    )
    if non_blocking:
        _check_non_blocking(spec, data)
    return spec


def _check_non_blocking(spec: FabricSpec, data: dict) -> None:
    """Every edge switch's hosts, at their own rates, must fit its uplinks."""
    uplink = spec.cores * spec.links_per_pair * spec.effective_fabric_link_rate_bps
    group_of_host = [grp for grp in spec.host_groups for _ in range(grp.count)]
    for i, downlink in enumerate(spec.edge_host_rates_bps()):
        if downlink <= uplink:
            continue
        members = group_of_host[i * spec.hosts_per_edge:(i + 1) * spec.hosts_per_edge]
        if all(grp.nic_from == "host_link_rate" and grp.nic_count == 1 for grp in members):
            raise SpecError(spec.source, "host_link_rate",
                            f"{spec.hosts_per_edge} hosts x {data.get('host_link_rate')} = {downlink / 1e9:g} Gbit/s "
                            f"per {spec.edge_role} exceed its {uplink / 1e9:g} Gbit/s of uplinks, but non_blocking is "
                            f"true; lower host_link_rate or hosts, raise fabric capacity, or set non_blocking: false")
        counts: dict[str, int] = {}
        for grp in members:
            counts[grp.name] = counts.get(grp.name, 0) + 1
        by_group = {grp.name: grp for grp in members}
        mix = ", ".join(f"{n} x {_nic_label(by_group[name])} ({name})" for name, n in counts.items())
        raise SpecError(spec.source, "host_groups",
                        f"{spec.edge_role}{i} holds {mix} = {downlink / 1e9:g} Gbit/s of host links, exceeding its "
                        f"{uplink / 1e9:g} Gbit/s of uplinks, but non_blocking is true; lower the groups' nic_rate or "
                        f"nic_count, reorder the groups, raise fabric capacity, or set non_blocking: false")


def _nic_label(grp: HostGroup) -> str:
    rate = f"{grp.nic_rate_bps / 1e9:g}G"
    return rate if grp.nic_count == 1 else f"{grp.nic_count} x {rate}"


def _parse_host_groups(top: Section, hosts: int, host_rate_bps: int | None) -> tuple[HostGroup, ...]:
    """Host groups fill the hosts in order (edge-major); their counts must add up."""
    if not top.has("host_groups"):
        top.raw("host_groups", None)
        default = Section({"name": "hosts", "count": hosts, "accelerator": "H100"}, top.source, "host_groups[default]")
        nic_count, nic_rate, nic_from = _group_nics(default, "H100", host_rate_bps)
        return (HostGroup("hosts", hosts, "H100", "any", nic_count, nic_rate, nic_from),)
    groups, seen = [], set()
    for sec in top.sections("host_groups"):
        name = sec.text("name")
        if name in seen:
            raise sec.fail("name", f"duplicate host group name {name!r}")
        seen.add(name)
        count = sec.integer("count", minimum=1)
        accelerator = sec.text("accelerator")
        role = sec.choice("role", HOST_ROLES, "any")
        _check_kind(sec, accelerator, role)
        nic_count, nic_rate, nic_from = _group_nics(sec, accelerator, host_rate_bps)
        sec.finish()
        groups.append(HostGroup(name, count, accelerator, role, nic_count, nic_rate, nic_from))
    total = sum(g.count for g in groups)
    if total != hosts:
        raise top.fail("host_groups", f"counts add up to {total} hosts but the design has {hosts}; make them equal")
    return tuple(groups)


def _check_kind(sec: Section, accelerator: str, role: str) -> None:
    """A CPU server (catalog kind cpu) is a front end and a front end is a CPU server: an accelerator
    cannot be priced and timed as a tokenizer, nor a CPU as prefill or decode."""
    from fabric.catalog import load_accelerators
    folded = {name.lower(): acc for name, acc in load_accelerators().items()}
    acc = folded.get(accelerator.lower())
    if role == FRONTEND_ROLE and (acc is None or not acc.is_cpu):
        cpus = sorted(a.name for a in folded.values() if a.is_cpu)
        raise sec.fail("accelerator", f"got {accelerator!r} for role {FRONTEND_ROLE}; a front end is a CPU server of "
                                      f"the catalog (kind cpu): {', '.join(cpus)}")
    if acc is not None and acc.is_cpu and role != FRONTEND_ROLE:
        raise sec.fail("role", f"got {role!r}; {acc.name} is a CPU server (catalog kind cpu), which runs no model: "
                               f"give it role {FRONTEND_ROLE}")


def _group_nics(sec: Section, accelerator: str, host_rate_bps: int | None) -> tuple[int, int, str]:
    """A group's ``(nic_count, nic_rate_bps, nic_from)``.

    Precedence: the group's own ``nic_rate`` > the design's ``host_link_rate`` (one NIC of that
    rate: what every design meant before groups had NICs, so existing designs build the same
    fabric) > the accelerator's catalog entry. ``nic_count`` defaults to 1, or to the catalog's
    count when the catalog gives the rate.
    """
    count = sec.integer("nic_count", minimum=1) if sec.raw("nic_count", None) is not None else None
    rate = sec.rate_bps("nic_rate", None)
    if rate is not None:
        return count or 1, rate, "group"
    if host_rate_bps is not None:
        return count or 1, host_rate_bps, "host_link_rate"
    from fabric.catalog import load_accelerators
    catalog = load_accelerators()
    folded = {name.lower(): acc for name, acc in catalog.items()}
    acc = folded.get(accelerator.lower())
    if acc is None:
        raise sec.fail("accelerator", f"got {accelerator!r}, which the accelerator catalog lacks (it has "
                                      f"{', '.join(sorted(catalog))}), so its NICs are unknown; give the group "
                                      f"nic_rate (and nic_count) or the design host_link_rate")
    return count or acc.nic_count, acc.nic_rate_bps, "catalog"
