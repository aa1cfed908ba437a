"""An accelerator mix, and how it rewrites a fabric design.

``fabric compare --mix NAME=SPEC`` compares designs × mixes: every (design, mix) pair is one
compared design named ``<design>+<mix>``. A SPEC is ``design`` (the design as written) or
comma-separated ``KEY:ACCELERATOR[@NIC]`` entries:

* ``KEY`` is a host group name, a serving role (:data:`fabric.specs.HOST_ROLES`, matching the
  groups of that role) or ``*`` (every accelerator group; front-end CPU servers change only when
  named by group or role). A group matched by its name takes that entry, else one matching its
  role, else ``*``; a group no entry matches keeps its accelerator and NICs.
* ``ACCELERATOR`` is a catalog accelerator (``fabric/catalog/accelerators.yaml``), matched without
  regard to case and stored in the catalog's spelling.
* ``@NIC`` (``800G``, ``3x200G``: nic_count x nic_rate) gives the group's NICs. Without it the
  group's own ``nic_rate``/``nic_count`` are removed: the NICs belong to the accelerator (a B200
  build's 800G NIC must not stick to the H100 that replaces it), so the group then takes the
  design's ``host_link_rate``, else the new accelerator's catalog NICs (docs/design.md).

A mix is applied to the design's raw YAML mapping, which is then parsed like any design file
(:func:`fabric.specs.parse_fabric_spec`), so every design check (``non_blocking`` and the rest)
holds for the mixed design too. Every problem is one :class:`~fabric.errors.SpecError` naming
``--mix``, the mix as written and the bad part, raised before anything runs.
"""

from __future__ import annotations

import copy
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from fabric.errors import SpecError
from fabric.specs import FRONTEND_ROLE, HOST_ROLES, FabricSpec, parse_fabric_spec
from fabric.units import UnitError, parse_rate_bps

AS_WRITTEN = "design"
EVERY_GROUP = "*"
# A mix name is part of a directory name (OUT/runs/<design>+<mix>-r1): letters, digits, . _ -
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_NIC = re.compile(r"(?:(?P<count>\d+)\s*[x×]\s*)?(?P<rate>\S.*)")
OPTION = "--mix"


@dataclass(frozen=True)
class MixEntry:
    """One ``KEY:ACCELERATOR[@NIC]`` of a mix."""

    key: str                        # a host group name, a role or "*"
    accelerator: str                # the catalog's spelling
    nic_count: int | None = None    # with nic_rate, from "@NIC"
    nic_rate: str | None = None     # as written, e.g. "800G"


@dataclass(frozen=True)
class Mix:
    """A named accelerator mix; no entries means the design as written (SPEC ``design``)."""

    name: str
    text: str                       # NAME=SPEC as given, for messages
    entries: tuple[MixEntry, ...] = ()

    @property
    def as_written(self) -> bool:
        return not self.entries

    def entry_for(self, group: str, role: str, every: bool = True) -> MixEntry | None:
        """The entry for a group: by its name, else by its role, else ``*`` (when ``every``)."""
        by_key = {e.key: e for e in self.entries}
        return by_key.get(group) or by_key.get(role) or (by_key.get(EVERY_GROUP) if every else None)


def _fail(text: str, problem: str) -> SpecError:
    return SpecError(OPTION, text, problem)


def parse_mix(text: str) -> Mix:
    """Parse one ``NAME=SPEC``; raises SpecError naming ``--mix``, the text and the bad part."""
    from fabric.catalog import load_accelerators

    text = str(text).strip()
    name, eq, spec = text.partition("=")
    name, spec = name.strip(), spec.strip()
    if not eq or not name or not spec:
        raise _fail(text, "expected NAME=SPEC, e.g. h100-only=*:H100 or as-built=design")
    if not _NAME.fullmatch(name):
        raise _fail(text, f"mix name {name!r} cannot be part of a directory name; use letters, digits, '.', '_' "
                          f"and '-' (starting with a letter or digit)")
    if spec == AS_WRITTEN:
        return Mix(name, text)
    catalog = load_accelerators()
    folded = {n.lower(): n for n in catalog}
    entries: list[MixEntry] = []
    for part in spec.split(","):
        part = part.strip()
        key, colon, rest = part.partition(":")
        key, rest = key.strip(), rest.strip()
        if not colon or not key or not rest:
            raise _fail(text, f"cannot read {part!r}; each entry is KEY:ACCELERATOR[@NIC] (KEY a host group, a "
                              f"role ({', '.join(HOST_ROLES)}) or *), e.g. decode:MI300X or *:B200@800G")
        if any(e.key == key for e in entries):
            raise _fail(text, f"{key!r} is given twice")
        accelerator, at, nic = rest.partition("@")
        accelerator, nic = accelerator.strip(), nic.strip()
        if accelerator.lower() not in folded:
            raise _fail(text, f"unknown accelerator {accelerator!r} in {part!r}; valid: {', '.join(sorted(catalog))}")
        count, rate = None, None
        if at:
            count, rate = _parse_nic(text, part, nic)
        entries.append(MixEntry(key, folded[accelerator.lower()], count, rate))
    return Mix(name, text, tuple(entries))


def _parse_nic(text: str, part: str, nic: str) -> tuple[int, str]:
    m = _NIC.fullmatch(nic)
    problem = f"cannot read the NIC {nic!r} in {part!r}; give a rate or nic_count x nic_rate, e.g. 800G or 3x200G"
    if not nic or not m:
        raise _fail(text, problem)
    count = int(m["count"]) if m["count"] else 1
    if count < 1:
        raise _fail(text, f"{part!r}: a host has at least one NIC")
    try:
        parse_rate_bps(m["rate"].strip())
    except UnitError:
        raise _fail(text, problem) from None
    return count, m["rate"].strip()


def parse_mixes(texts) -> list[Mix]:
    """Every ``--mix`` given, in order; refuses two mixes of one name."""
    mixes: list[Mix] = []
    for text in texts or ():
        mix = parse_mix(text)
        if any(m.name == mix.name for m in mixes):
            raise _fail(mix.text, f"mix name {mix.name!r} is given twice; name each mix once")
        mixes.append(mix)
    return mixes


def mixed_mapping(data: dict, base: FabricSpec, mix: Mix, name: str, design: str) -> dict:
    """A deep copy of the design mapping ``data`` (whose parsed form is ``base``) with ``mix``
    applied and ``name`` as its name. ``design`` names the design file in messages."""
    out = copy.deepcopy(data)
    out["name"] = name
    if mix.as_written:
        return out
    groups = base.host_groups
    keys = {g.name for g in groups} | {g.role for g in groups} | {EVERY_GROUP}
    for entry in mix.entries:
        if entry.key not in keys:
            roles = sorted({g.role for g in groups})
            raise _fail(mix.text, f"{entry.key!r} matches no host group or role of {design} (groups: "
                                  f"{', '.join(g.name for g in groups)}; roles: {', '.join(roles)}; or *)")
    if not isinstance(out.get("host_groups"), list):
        # The default of a design without host_groups (fabric.specs._parse_host_groups), written out.
        (only,) = groups
        out["host_groups"] = [{"name": only.name, "count": only.count, "accelerator": only.accelerator}]
    rewritten = []
    for raw, grp in zip(out["host_groups"], groups):
        # `*` means every accelerator: front-end (CPU) servers keep theirs unless named.
        entry = mix.entry_for(grp.name, grp.role, every=grp.role != FRONTEND_ROLE)
        if entry is not None and isinstance(raw, dict):
            raw = {k: v for k, v in raw.items() if k not in ("nic_rate", "nic_count")}
            raw["accelerator"] = entry.accelerator
            if entry.nic_rate is not None:
                raw["nic_rate"] = entry.nic_rate
                raw["nic_count"] = entry.nic_count
        rewritten.append(raw)
    out["host_groups"] = rewritten
    return out


def mixed_yaml(data: dict) -> str:
    """The text of a mixed design file (what ``fabric compare`` writes to ``OUT/designs/``)."""
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


def apply_mix(data: dict, base: FabricSpec, mix: Mix, name: str, path: str | Path) -> tuple[FabricSpec, dict]:
    """The mixed design, parsed and checked like a design file, and its mapping.

    ``base`` is ``data`` parsed; ``name`` the mixed design's name (``<design>+<mix>``). Its source is
    ``<path> with mix <mix>`` and its content hash that of :func:`mixed_yaml`. A design check the
    mixed design fails (say ``non_blocking`` with faster NICs) is a SpecError naming ``--mix``, the
    mix, the design file and the design key.
    """
    mapping = mixed_mapping(data, base, mix, name, str(path))
    source = f"{path} with mix {mix.name}"
    digest = hashlib.sha256(mixed_yaml(mapping).encode()).hexdigest()
    try:
        spec = parse_fabric_spec(mapping, source, digest)
    except SpecError as exc:
        where = f"{exc.source}: {exc.key}" if exc.key else exc.source
        raise _fail(mix.text, f"{where}: {exc.problem}") from None
    return spec, mapping
