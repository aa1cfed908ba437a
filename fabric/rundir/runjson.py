"""run.json: the typed, versioned description of one run (docs/design.md §3).

Every engine writes the keys of :class:`RunJson`; readers may rely on them and on nothing else
being guessed. Engine-specific facts (the emulator's shell commands and budget, the simulator's
event counts) sit beside them at the top level of the file and are read by the engine's own
fidelity checks. ``format`` says which version of this contract wrote the file:

* **format 1** (fabric 0.1, before engines): no ``engine``, ``nodes`` or ``idle_path_delay_ns``.
  Read by upgrading in memory: engine ``emu``, nodes from the stored design, idle path delay from
  the noise probe. The file on disk is left as it is.
* **format 2** (now): the keys below.

A file from a newer format, or with a key missing or of the wrong type, is refused with one line
naming the file and the key.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from enum import Enum
from pathlib import Path

import networkx as nx

from fabric.errors import RunDirError
from fabric.jsonio import plain

FORMAT = 2


class Engine(str, Enum):
    """The engines that write run directories (``--engine`` on the command line)."""
    emu = "emu"   # real Linux routers in network namespaces, rates scaled by k
    sim = "sim"   # the packet-level simulator (ns-3), real rates


ENGINES = tuple(e.value for e in Engine)


@dataclass(frozen=True)
class RunJson:
    """The keys every engine writes to run.json."""
    engine: str                 # "emu" (Linux namespaces) or "sim" (packet-level simulator)
    engine_version: str         # kernel + agents for emu; ns-3 version for sim
    name: str
    fabric_version: str
    topology: dict              # {path, sha256, spec (FabricSpec.to_dict()), facts}
    workload: dict              # workload facts (name, model, patterns, messages, path, ...)
    seed: int                   # workload seed
    hash_seed: int              # ECMP hash seed
    scale_k: float              # rates, sizes and buffers divided by k (1: real rates)
    dilation: float             # the fabric ran D times slower; recorded times are undilated
    payload_bytes: int          # payload per full packet
    t0_ns: int                  # the instant schedule time 0 maps to
    tmax_ns: int                # a packet not received within tmax of its send is lost
    nodes: dict                 # name -> {role, tier, [edge, group, accelerator, address, nic_rate_bps]}
    idle_path_delay_ns: float | None  # one-way delay of a small packet on the idle fabric
    wall_time_s: float
    format: int = FORMAT
    details: dict = field(default_factory=dict)  # engine-specific keys, written flat beside these

    def to_dict(self) -> dict:
        data = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "details"}
        clash = set(data) & set(self.details)
        if clash:
            raise ValueError(f"engine details reuse contract keys {sorted(clash)}")
        return {**self.details, **data}


# key -> (accepted types, description used in errors)
_NUMBER = ((int, float), "a number")
_TYPES = {
    "engine": ((str,), "one of " + ", ".join(ENGINES)),
    "engine_version": ((str,), "a string"),
    "name": ((str,), "a string"),
    "fabric_version": ((str,), "a string"),
    "topology": ((dict,), "a mapping"),
    "workload": ((dict,), "a mapping"),
    "seed": ((int,), "an integer"),
    "hash_seed": ((int,), "an integer"),
    "scale_k": _NUMBER,
    "dilation": _NUMBER,
    "payload_bytes": ((int,), "an integer"),
    "t0_ns": ((int,), "an integer"),
    "tmax_ns": ((int,), "an integer"),
    "nodes": ((dict,), "a mapping"),
    "idle_path_delay_ns": ((int, float, type(None)), "a number or null"),
    "wall_time_s": _NUMBER,
    "format": ((int,), "an integer"),
}


def node_facts(g: nx.MultiGraph) -> dict:
    """What readers need to know about each node, from the graph (never from names)."""
    keep = ("role", "tier", "index", "edge", "group", "accelerator", "host_role", "address", "nic_rate_bps")
    return {str(n): {k: d[k] for k in keep if k in d} for n, d in sorted(g.nodes(data=True))}


def validate(data: dict, source: str) -> dict:
    """``data`` if it is a format-2 run.json; else one RunDirError naming ``source`` and the key."""
    if not isinstance(data, dict):
        raise RunDirError(f"{source}: run.json must hold a mapping, got {type(data).__name__}")
    for key, (types, what) in _TYPES.items():
        if key not in data:
            raise RunDirError(f"{source}: key '{key}' is missing (expected {what})")
        value = data[key]
        if isinstance(value, bool) or not isinstance(value, types):
            raise RunDirError(f"{source}: key '{key}' is {value!r}, expected {what}")
    if data["engine"] not in ENGINES:
        raise RunDirError(f"{source}: key 'engine' is {data['engine']!r}, expected one of {', '.join(ENGINES)}")
    if not data["scale_k"] >= 1:
        raise RunDirError(f"{source}: key 'scale_k' is {data['scale_k']!r}, expected a number >= 1")
    if not data["dilation"] >= 1:
        raise RunDirError(f"{source}: key 'dilation' is {data['dilation']!r}, expected a number >= 1")
    if not isinstance(data["topology"].get("spec"), dict):
        raise RunDirError(f"{source}: key 'topology.spec' is missing (the fabric design as recorded)")
    return data


def upgrade(data: dict, source: str) -> dict:
    """A run.json of an older format, brought to the current one in memory."""
    version = data.get("format", 1) if isinstance(data, dict) else None
    if version == FORMAT:
        return data
    if isinstance(version, int) and version > FORMAT:
        raise RunDirError(f"{source}: written by a newer fabric (run.json format {version}; this fabric reads "
                          f"up to {FORMAT}): upgrade fabric, or re-run the workload with this version")
    if version != 1:
        raise RunDirError(f"{source}: key 'format' is {version!r}, expected an integer <= {FORMAT}")
    from fabric.topology import build_fabric
    out = dict(data)
    out["format"] = FORMAT
    out["engine"] = "emu"
    tools = data.get("tools") or {}
    out["engine_version"] = f"linux {tools.get('kernel', 'unknown')}"
    spec = (data.get("topology") or {}).get("spec")
    if not isinstance(spec, dict):
        raise RunDirError(f"{source}: format 1 run.json without 'topology.spec' cannot be read by this fabric; "
                          f"re-run the workload")
    out["nodes"] = node_facts(build_fabric(fabric_spec(out, source)))
    out["idle_path_delay_ns"] = None  # format 1 did not state it: readers use the noise probe's median
    out.setdefault("name", Path(source).parent.name)
    out.setdefault("wall_time_s", 0.0)
    return out


def fabric_spec(data: dict, source: str = "run.json"):
    """The FabricSpec the run used, as recorded in ``topology.spec``."""
    from fabric.specs import FabricSpec
    spec = (data.get("topology") or {}).get("spec")
    if not isinstance(spec, dict):
        raise RunDirError(f"{source}: key 'topology.spec' is missing (the fabric design as recorded)")
    try:
        return FabricSpec.from_dict(spec)
    except (TypeError, ValueError) as exc:
        raise RunDirError(f"{source}: key 'topology.spec' is not a complete fabric design ({exc})") from None


def read_run_json(run_dir: Path) -> dict:
    """run.json of ``run_dir`` as a dict with every :class:`RunJson` key, upgraded and validated."""
    path = Path(run_dir) / "run.json"
    if not path.exists():
        raise RunDirError(f"{run_dir}: run.json is missing; is this a fabric run directory?")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise RunDirError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    return validate(upgrade(data, str(path)), str(path))


def core_switches(run: dict) -> dict[str, int]:
    """The core switches (spines, NCFs): name -> index."""
    return {n: int(d.get("index", 0)) for n, d in (run.get("nodes") or {}).items() if d.get("tier") == "core"}


def host_rates_bps(run: dict) -> dict[str, float]:
    """Each host's NIC rate as built (real, before scaling)."""
    return {n: float(d["nic_rate_bps"]) for n, d in (run.get("nodes") or {}).items()
            if d.get("role") == "host" and "nic_rate_bps" in d}


def to_record(run: RunJson) -> dict:
    """The dict written to run.json, validated first: a writer's bug fails here, not in a reader."""
    data = plain(run.to_dict())
    return validate(data, "run.json (being written)")
