"""Dotted paths into a YAML mapping: ``spines``, ``load_balancing.mode``, ``patterns[0].load``,
``patterns[kv].arrivals.rate_per_s`` (a list item by index, or by its ``name``).

A sweep names what it varies this way; this module parses such a path, reads the value it points
at and writes a new one into a deep copy. Intermediate keys must exist, except that a missing
mapping is created (``scheduler.tick`` on a design without ``scheduler:``); the last key may be
missing, because the design or profile parser decides whether it is a key at all.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass

_STEP = re.compile(r"([A-Za-z_][A-Za-z0-9_\-]*)((?:\[[^\[\]]+\])*)$")
_INDEX = re.compile(r"\[([^\[\]]+)\]")


class PathError(ValueError):
    """A dotted path that is malformed or does not lead anywhere in the mapping."""


@dataclass(frozen=True)
class DottedPath:
    """A parsed path: each step a mapping key (str) or a list item (int index, or ``("name", value)``)."""

    text: str
    steps: tuple

    def __str__(self) -> str:
        return self.text


def parse_path(text: str) -> DottedPath:
    """Parse ``a.b[0].c`` / ``patterns[kv].load``; raises :class:`PathError` when malformed.

    Examples
    --------
    >>> parse_path("patterns[0].arrivals.rate_per_s").steps
    ('patterns', 0, 'arrivals', 'rate_per_s')
    >>> parse_path("patterns[kv].load").steps
    ('patterns', ('name', 'kv'), 'load')
    """
    if not isinstance(text, str) or not text.strip():
        raise PathError(f"got {text!r}; expected a dotted key such as load_balancing.mode or patterns[0].load")
    steps: list = []
    for part in text.strip().split("."):
        m = _STEP.match(part)
        if not m:
            raise PathError(f"{text!r}: cannot read {part!r}; a step is a key, optionally followed by [index] "
                            f"or [pattern name]")
        steps.append(m.group(1))
        for index in _INDEX.findall(m.group(2)):
            index = index.strip()
            steps.append(int(index) if re.fullmatch(r"-?\d+", index) else ("name", index))
    return DottedPath(text.strip(), tuple(steps))


def _describe(steps) -> str:
    out = ""
    for s in steps:
        if isinstance(s, str):
            out += f".{s}" if out else s
        elif isinstance(s, int):
            out += f"[{s}]"
        else:
            out += f"[{s[1]}]"
    return out or "the top level"


def _item(container: list, step, done) -> int:
    """The list position a step names; raises PathError naming what exists."""
    where = _describe(done)
    if isinstance(step, int):
        if not 0 <= step < len(container):
            raise PathError(f"{where} has {len(container)} entries (0..{len(container) - 1}); no [{step}]")
        return step
    names = [i.get("name") for i in container if isinstance(i, dict)]
    for pos, item in enumerate(container):
        if isinstance(item, dict) and item.get("name") == step[1]:
            return pos
    raise PathError(f"{where} has no entry named {step[1]!r}; names: {', '.join(map(str, names)) or 'none'}")


def get_value(data: dict, path: DottedPath, default=None):
    """The value at ``path`` in ``data`` (``default`` when the last key is missing)."""
    node = data
    for i, step in enumerate(path.steps):
        last = i == len(path.steps) - 1
        if isinstance(step, str):
            if not isinstance(node, dict):
                raise PathError(f"{_describe(path.steps[:i])} is not a mapping; cannot read key {step!r}")
            if step not in node:
                if last:
                    return default
                raise PathError(f"{_describe(path.steps[:i + 1])} does not exist")
            node = node[step]
        else:
            if not isinstance(node, list):
                raise PathError(f"{_describe(path.steps[:i])} is not a list; cannot take an entry of it")
            node = node[_item(node, step, path.steps[:i])]
    return node


def set_value(data: dict, path: DottedPath, value) -> dict:
    """A deep copy of ``data`` with ``value`` at ``path``; raises :class:`PathError` when the path
    leads nowhere (a list index out of range, an unknown entry name, a key under a scalar)."""
    out = copy.deepcopy(data)
    node = out
    steps = path.steps
    for i, step in enumerate(steps):
        last = i == len(steps) - 1
        if isinstance(step, str):
            if not isinstance(node, dict):
                raise PathError(f"{_describe(steps[:i])} is not a mapping; cannot set key {step!r} under it")
            if last:
                node[step] = copy.deepcopy(value)
                return out
            if step not in node or node[step] is None:
                if not isinstance(steps[i + 1], str):
                    raise PathError(f"{_describe(steps[:i + 1])} does not exist, so it has no entries")
                node[step] = {}
            node = node[step]
        else:
            if not isinstance(node, list):
                raise PathError(f"{_describe(steps[:i])} is not a list; cannot take an entry of it")
            pos = _item(node, step, steps[:i])
            if last:
                node[pos] = copy.deepcopy(value)
                return out
            node = node[pos]
    return out
