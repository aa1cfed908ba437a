"""Reading YAML documents into validated values, with errors that name file, key and value.

Every input file fabric accepts (fabric designs, workload profiles, cost files) is read through
:class:`Section`, so each refuses bad input the same way: one :class:`~fabric.errors.SpecError`
whose message is ``FILE: dotted.key: what was wrong; what would be valid``. Unknown keys are
refused too (a typo must not silently fall back to a default).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Iterable

import yaml

from fabric.errors import SpecError
from fabric.units import UnitError, parse_bytes, parse_duration_ns, parse_rate_bps

_MISSING = object()


def load_yaml_mapping(path: str | Path, error: type[SpecError] = SpecError) -> dict:
    """Load a YAML file whose top level must be a mapping."""
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise error(str(path), "", "file not found") from None
    except OSError as exc:
        raise error(str(path), "", f"cannot read file ({exc.strerror})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "unknown position"
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise error(str(path), "", f"malformed YAML at {where}: {problem}") from None
    if not isinstance(data, dict):
        raise error(str(path), "", f"top level must be a mapping of keys, got {type(data).__name__}")
    return data


class Section:
    """A mapping being read: typed getters that validate, and a check for unknown keys.

    Parameters
    ----------
    data : dict
        The mapping (already parsed YAML).
    source : str
        File name, used in error messages.
    prefix : str
        Dotted key path of this mapping inside the file ('' for the top level).
    error : type
        The SpecError subclass to raise.
    """

    def __init__(self, data: dict, source: str, prefix: str = "", error: type[SpecError] = SpecError):
        if not isinstance(data, dict):
            raise error(source, prefix, f"must be a mapping of keys, got {type(data).__name__} {data!r}")
        self.data = data
        self.source = source
        self.prefix = prefix
        self.error = error
        self._used: set[str] = set()

    def key(self, name: str) -> str:
        return f"{self.prefix}.{name}" if self.prefix else name

    def fail(self, name: str, problem: str) -> SpecError:
        """Build (not raise) an error about key ``name`` of this section."""
        return self.error(self.source, self.key(name), problem)

    def has(self, name: str) -> bool:
        return name in self.data

    def raw(self, name: str, default: Any = _MISSING) -> Any:
        self._used.add(name)
        if name not in self.data or self.data[name] is None:
            if default is _MISSING:
                raise self.fail(name, "is required")
            return default
        return self.data[name]

    def _convert(self, name, default, parse, what):
        value = self.raw(name, default)
        if value is default and default is not _MISSING:
            return value
        try:
            return parse(value)
        except UnitError as exc:
            raise self.fail(name, str(exc)) from None

    def rate_bps(self, name: str, default: Any = _MISSING) -> int:
        return self._convert(name, default, parse_rate_bps, "rate")

    def size_bytes(self, name: str, default: Any = _MISSING) -> int:
        return self._convert(name, default, parse_bytes, "size")

    def duration_ns(self, name: str, default: Any = _MISSING) -> int:
        return self._convert(name, default, parse_duration_ns, "duration")

    def integer(self, name: str, default: Any = _MISSING, minimum: int | None = None,
                maximum: int | None = None) -> int:
        value = self.raw(name, default)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(name, f"got {value!r}; expected a whole number")
        self._check_range(name, value, minimum, maximum)
        return value

    def number(self, name: str, default: Any = _MISSING, minimum: float | None = None,
               maximum: float | None = None, exclusive_minimum: bool = False) -> float:
        value = self.raw(name, default)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise self.fail(name, f"got {value!r}; expected a number")
        if exclusive_minimum and minimum is not None and value <= minimum:
            raise self.fail(name, f"got {value!r}; must be greater than {minimum}")
        self._check_range(name, value, minimum, maximum)
        return float(value)

    def _check_range(self, name, value, minimum, maximum):
        if minimum is not None and value < minimum:
            raise self.fail(name, f"got {value!r}; must be at least {minimum}")
        if maximum is not None and value > maximum:
            raise self.fail(name, f"got {value!r}; must be at most {maximum}")

    def text(self, name: str, default: Any = _MISSING) -> str:
        value = self.raw(name, default)
        if not isinstance(value, str) or not value.strip():
            raise self.fail(name, f"got {value!r}; expected a non-empty string")
        return value.strip()

    def boolean(self, name: str, default: Any = _MISSING) -> bool:
        value = self.raw(name, default)
        if not isinstance(value, bool):
            raise self.fail(name, f"got {value!r}; expected true or false")
        return value

    def choice(self, name: str, choices: Iterable[str], default: Any = _MISSING) -> str:
        choices = list(choices)
        value = self.raw(name, default)
        if value not in choices:
            raise self.fail(name, f"got {value!r}; expected one of {', '.join(map(str, choices))}")
        return value

    def section(self, name: str, default: Any = _MISSING) -> "Section":
        value = self.raw(name, default)
        return Section(value, self.source, self.key(name), self.error)

    def sections(self, name: str, default: Any = _MISSING) -> list["Section"]:
        """A list of mappings, each returned as a Section keyed ``name[i]``."""
        value = self.raw(name, default)
        if not isinstance(value, list) or not value:
            raise self.fail(name, f"got {value!r}; expected a non-empty list of mappings")
        return [Section(item, self.source, f"{self.key(name)}[{i}]", self.error) for i, item in enumerate(value)]

    def finish(self) -> None:
        """Refuse keys that no getter asked for (typos must not pass silently)."""
        unknown = [k for k in self.data if k not in self._used]
        if unknown:
            name = unknown[0]
            known = ", ".join(sorted(self._used)) or "none"
            raise self.fail(str(name), f"unknown key; valid keys here: {known}")
