"""Network parts: switch, optic and NIC prices and power, and pricing a fabric's bill of materials.

The data lives in ``network.yaml`` next to this module; every entry has a ``source`` or an
``assumptions`` list saying why there is none. :func:`price_bom` turns the output of
:func:`fabric.topology.bill_of_materials` into priced line items, each naming the catalog part it
used and how (a switch with fewer ports than the box it is priced from is charged per port used:
an emulated slice of a fabric costs the same per host as the full-size fabric it stands for).

Examples
--------
>>> parts = load_network_parts()
>>> parts.switch_for("leaf", 64, "400G")[0].name
'ethernet-64x400G'
>>> items = price_bom({"switches": [{"role": "leaf", "radix": 8, "speed": "400G", "count": 2}],
...                    "optics": [], "nics": []}, parts)
>>> items[0]["units"], round(items[0]["capex_usd"])
(0.125, 10750)
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, replace
from pathlib import Path

from fabric.errors import CostError
from fabric.units import UnitError, format_rate, parse_rate_bps
from fabric.yamlspec import Section, load_yaml_mapping

NETWORK_FILE = Path(__file__).resolve().parent / "network.yaml"
SWITCH_ROLES = ("leaf", "spine", "ncp", "ncf")


@dataclass(frozen=True)
class SwitchPart:
    """A switch box model: ports at one speed, price and power without optics."""

    name: str
    roles: tuple[str, ...]
    radix: int
    speed_bps: int
    price_usd: float
    power_w: float
    source: str = ""
    assumptions: tuple[str, ...] = ()

    @property
    def speed(self) -> str:
        return format_rate(self.speed_bps)


@dataclass(frozen=True)
class PortPart:
    """An optic module (one per link end) or a NIC, at one speed."""

    kind: str
    speed_bps: int
    price_usd: float
    power_w: float
    source: str = ""
    assumptions: tuple[str, ...] = ()

    @property
    def speed(self) -> str:
        return format_rate(self.speed_bps)


@dataclass(frozen=True)
class NetworkParts:
    """The network catalog (possibly with cost-file overrides applied)."""

    switches: tuple[SwitchPart, ...]
    optics: tuple[PortPart, ...]
    nics: tuple[PortPart, ...]
    origin: str = str(NETWORK_FILE)

    def switch_for(self, role: str, radix: int, speed: str | int) -> tuple[SwitchPart, float]:
        """The box a BOM switch is priced from, and how many boxes it counts as.

        Among boxes that fill ``role`` at the slowest catalog speed covering ``speed`` and have at
        least ``radix`` ports, the one with the lowest price per port; a switch using fewer ports
        counts as ``radix / box radix`` of a box, so designs are compared per port used. If no box
        has enough ports, the largest is used ``ceil(radix / box radix)`` times.
        """
        speed_bps = _speed_bps(speed)
        fits = [s for s in self.switches if role in s.roles and s.speed_bps >= speed_bps]
        if not fits:
            have = ", ".join(f"{s.name} ({'/'.join(s.roles)} {s.speed})" for s in self.switches)
            raise CostError(self.origin, "switches",
                            f"no switch for role {role!r} at {format_rate(speed_bps)} or faster; catalog has {have}")
        # Prefer the slowest adequate speed, then the smallest adequate radix.
        slowest = min(s.speed_bps for s in fits)
        fits = [s for s in fits if s.speed_bps == slowest]
        big_enough = [s for s in fits if s.radix >= radix]
        if big_enough:
            box = min(big_enough, key=lambda s: (s.price_usd / s.radix, s.radix))
            return box, radix / box.radix
        box = max(fits, key=lambda s: (s.radix, -s.price_usd))
        return box, float(math.ceil(radix / box.radix))

    def optic_for(self, speed: str | int) -> PortPart:
        return _port_for(self.optics, speed, "optics", self.origin)

    def nic_for(self, speed: str | int) -> PortPart:
        return _port_for(self.nics, speed, "nics", self.origin)

    def to_dict(self) -> dict:
        def part(p):
            d = {k: v for k, v in p.__dict__.items() if k != "speed_bps"}
            d["speed"] = p.speed
            d["roles"] = list(d["roles"]) if "roles" in d else None
            d["assumptions"] = list(p.assumptions)
            return {k: v for k, v in d.items() if v is not None}
        return {"origin": self.origin, "switches": [part(s) for s in self.switches],
                "optics": [part(o) for o in self.optics], "nics": [part(n) for n in self.nics]}


def _speed_bps(speed: str | int) -> int:
    if isinstance(speed, (int, float)) and not isinstance(speed, bool):
        return int(speed)
    return parse_rate_bps(speed)


def _port_for(parts: tuple[PortPart, ...], speed, key: str, origin: str) -> PortPart:
    speed_bps = _speed_bps(speed)
    fits = [p for p in parts if p.speed_bps >= speed_bps]
    if not fits:
        have = ", ".join(p.speed for p in parts) or "none"
        raise CostError(origin, key, f"no {key[:-1]} at {format_rate(speed_bps)} or faster; catalog has {have}")
    return min(fits, key=lambda p: (p.speed_bps, p.price_usd))


def _provenance(sec: Section, required: bool = True) -> tuple[str, tuple[str, ...]]:
    source = sec.raw("source", "")
    if not isinstance(source, str):
        raise sec.fail("source", f"got {source!r}; expected a sentence naming where the figure comes from")
    assumptions = sec.raw("assumptions", [])
    if not isinstance(assumptions, list) or not all(isinstance(a, str) and a.strip() for a in assumptions):
        raise sec.fail("assumptions", f"got {assumptions!r}; expected a list of sentences saying why")
    if required and not source.strip() and not assumptions:
        raise sec.fail("source", "every network part needs a source or an assumptions list saying why there is none")
    return source.strip(), tuple(a.strip() for a in assumptions)


def _money(sec: Section, name: str) -> float:
    return sec.number(name, minimum=0.0)


def _rate(sec: Section, name: str) -> int:
    try:
        return parse_rate_bps(sec.raw(name))
    except UnitError as exc:
        raise sec.fail(name, str(exc)) from None


def parse_switch(sec: Section, default_source: str = "") -> SwitchPart:
    name = sec.text("name")
    roles = sec.raw("roles")
    if not isinstance(roles, list) or not roles or any(r not in SWITCH_ROLES for r in roles):
        raise sec.fail("roles", f"got {roles!r}; expected a list drawn from {', '.join(SWITCH_ROLES)}")
    radix = sec.integer("radix", minimum=1)
    speed = _rate(sec, "speed")
    price = _money(sec, "price_usd")
    power = sec.number("power_w", minimum=0.0)
    source, assumptions = _provenance(sec, required=not default_source)
    sec.finish()
    return SwitchPart(name, tuple(roles), radix, speed, price, power, source or default_source, assumptions)


def parse_port(sec: Section, kind: str, default_source: str = "") -> PortPart:
    speed = _rate(sec, "speed")
    price = _money(sec, "price_usd")
    power = sec.number("power_w", minimum=0.0)
    source, assumptions = _provenance(sec, required=not default_source)
    sec.finish()
    return PortPart(kind, speed, price, power, source or default_source, assumptions)


def parse_network_parts(data: dict, source: str) -> NetworkParts:
    """Validate a whole parts mapping (the layout of ``network.yaml``)."""
    top = Section(data, source, error=CostError)
    switches = tuple(parse_switch(s) for s in top.sections("switches"))
    optics = tuple(parse_port(s, "optic") for s in top.sections("optics"))
    nics = tuple(parse_port(s, "nic") for s in top.sections("nics"))
    top.finish()
    names = [s.name for s in switches]
    dup = {n for n in names if names.count(n) > 1}
    if dup:
        raise CostError(source, "switches", f"duplicate switch names {sorted(dup)}")
    return NetworkParts(switches, optics, nics, source)


@functools.lru_cache(maxsize=None)
def _load_cached(path: str) -> NetworkParts:
    return parse_network_parts(load_yaml_mapping(path, CostError), path)


def load_network_parts(path: str | Path | None = None) -> NetworkParts:
    """The network catalog from ``network.yaml`` (or ``path``)."""
    return _load_cached(str(path or NETWORK_FILE))


def with_overrides(parts: NetworkParts, sec: Section) -> NetworkParts:
    """Apply a cost file's ``network.parts`` section on top of the catalog.

    Switches replace the catalog entry of the same ``name`` (or are added); optics and NICs
    replace the entry of the same speed (or are added). Entries without ``source`` are
    attributed to the cost file.
    """
    origin = f"cost file {sec.source}"
    switches = {s.name: s for s in parts.switches}
    optics = {o.speed_bps: o for o in parts.optics}
    nics = {n.speed_bps: n for n in parts.nics}
    if sec.has("switches"):
        for s in sec.sections("switches"):
            part = parse_switch(s, origin)
            switches[part.name] = part
    if sec.has("optics"):
        for s in sec.sections("optics"):
            part = parse_port(s, "optic", origin)
            optics[part.speed_bps] = part
    if sec.has("nics"):
        for s in sec.sections("nics"):
            part = parse_port(s, "nic", origin)
            nics[part.speed_bps] = part
    sec.finish()
    return replace(parts, switches=tuple(switches.values()), optics=tuple(optics.values()),
                   nics=tuple(nics.values()), origin=f"{parts.origin} + {sec.source}")


def price_bom(bom: dict, parts: NetworkParts | None = None) -> list[dict]:
    """Priced line items for a bill of materials (see :func:`fabric.topology.bill_of_materials`).

    Each item: ``category`` (switch/optic/nic), ``role`` (switches), ``radix``, ``speed``,
    ``count``, ``part`` (catalog name), ``units`` (boxes per BOM switch: < 1 for a slice),
    ``unit_price_usd``, ``unit_power_w`` (per BOM unit, after slicing), ``capex_usd``,
    ``power_w``, ``source``, ``assumptions``.
    """
    parts = parts or load_network_parts()
    items = []
    for sw in bom.get("switches", []):
        box, units = parts.switch_for(sw["role"], int(sw["radix"]), sw["speed"])
        note = (f"{sw['radix']} of {box.radix} ports of {box.name}" if units < 1
                else f"{units:g} x {box.name}")
        items.append({
            "category": "switch", "role": sw["role"], "radix": int(sw["radix"]), "speed": sw["speed"],
            "count": int(sw["count"]), "part": box.name, "units": units, "priced_as": note,
            "unit_price_usd": box.price_usd * units, "unit_power_w": box.power_w * units,
            "capex_usd": box.price_usd * units * sw["count"], "power_w": box.power_w * units * sw["count"],
            "source": box.source, "assumptions": list(box.assumptions),
        })
    for category, rows, lookup in (("optic", bom.get("optics", []), parts.optic_for),
                                   ("nic", bom.get("nics", []), parts.nic_for)):
        for row in rows:
            part = lookup(row["speed"])
            items.append({
                "category": category, "speed": row["speed"], "count": int(row["count"]),
                "part": f"{category}-{part.speed}", "units": 1.0, "priced_as": f"{part.speed} {category}",
                "unit_price_usd": part.price_usd, "unit_power_w": part.power_w,
                "capex_usd": part.price_usd * row["count"], "power_w": part.power_w * row["count"],
                "source": part.source, "assumptions": list(part.assumptions),
            })
    return items


__all__ = ["SwitchPart", "PortPart", "NetworkParts", "load_network_parts", "parse_network_parts",
           "with_overrides", "price_bom", "NETWORK_FILE"]
