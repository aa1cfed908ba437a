"""Human units parsed once, at the spec boundary, into integers with the unit in the name.

Rates are bits per second (``400G`` -> 400e9), sizes are bytes (``2MB`` -> 2,000,000;
``2MiB`` -> 2,097,152), durations are nanoseconds (``10us`` -> 10,000). Decimal prefixes are
SI (k = 1000), as in network gear data sheets; binary prefixes (KiB, MiB) are powers of 1024.
"""

from __future__ import annotations

import math
import re

# A sign is accepted so that "-5G" is refused as "must be positive", not as "not a rate".
_NUMBER = r"(?P<num>[+-]?[0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)"

_RATE_PREFIX = {"": 1, "k": 1e3, "K": 1e3, "m": 1e6, "M": 1e6, "g": 1e9, "G": 1e9, "t": 1e12, "T": 1e12}
_RATE_RE = re.compile(rf"^{_NUMBER}\s*(?P<prefix>[kKmMgGtT]?)\s*(?P<unit>bps|bit/s|b/s|bit|)$")

_SIZE_UNITS = {
    "": 1, "b": 1, "B": 1,
    "KB": 1e3, "kB": 1e3, "K": 1e3, "k": 1e3,
    "MB": 1e6, "M": 1e6,
    "GB": 1e9, "G": 1e9,
    "TB": 1e12, "T": 1e12,
    "KiB": 1024, "MiB": 1024**2, "GiB": 1024**3, "TiB": 1024**4,
}
_SIZE_RE = re.compile(rf"^{_NUMBER}\s*(?P<unit>[A-Za-z]*)$")

_DURATION_UNITS = {"ns": 1, "us": 1e3, "µs": 1e3, "ms": 1e6, "s": 1e9, "min": 60e9, "m": 60e9}
_DURATION_RE = re.compile(rf"^{_NUMBER}\s*(?P<unit>ns|us|µs|ms|s|min|m)$")


class UnitError(ValueError):
    """A value does not parse in the expected unit; the message says what would."""


def _as_text(value, expected: str) -> str:
    if isinstance(value, bool):
        raise UnitError(f"got {value!r}, a boolean; expected {expected}")
    return str(value).strip()


def parse_rate_bps(value) -> int:
    """Parse a link rate such as ``400G``, ``100Gbps``, ``25 Gbit/s`` or ``1e9`` into bit/s.

    Examples
    --------
    >>> parse_rate_bps("400G")
    400000000000
    >>> parse_rate_bps("12.5Mbps")
    12500000
    """
    text = _as_text(value, "a rate such as '400G'")
    match = _RATE_RE.match(text)
    if not match:
        raise UnitError(f"{value!r} is not a rate; use a number with k/M/G/T, e.g. '400G' or '25Gbps'")
    bps = float(match["num"]) * _RATE_PREFIX[match["prefix"]]
    # Checked after rounding: '0.4' must not become a rate of 0 bit/s.
    if not math.isfinite(bps) or round(bps) <= 0:
        raise UnitError(f"{value!r} must be a positive rate of at least 1 bit/s")
    return int(round(bps))


def parse_bytes(value) -> int:
    """Parse a size such as ``2MB``, ``64KiB``, ``4096`` into bytes.

    Examples
    --------
    >>> parse_bytes("2MB")
    2000000
    >>> parse_bytes("64KiB")
    65536
    """
    text = _as_text(value, "a size such as '2MB'")
    match = _SIZE_RE.match(text)
    if not match or match["unit"] not in _SIZE_UNITS:
        raise UnitError(f"{value!r} is not a size; use bytes with B/KB/MB/GB or KiB/MiB/GiB, e.g. '2MB'")
    size = float(match["num"]) * _SIZE_UNITS[match["unit"]]
    if not math.isfinite(size) or round(size) <= 0:
        raise UnitError(f"{value!r} must be a positive size of at least 1 byte")
    return int(round(size))


def parse_duration_ns(value) -> int:
    """Parse a duration such as ``10us``, ``2ms``, ``1.5s`` into nanoseconds.

    Examples
    --------
    >>> parse_duration_ns("10us")
    10000
    >>> parse_duration_ns("2ms")
    2000000
    """
    text = _as_text(value, "a duration such as '10us'")
    match = _DURATION_RE.match(text)
    if not match:
        raise UnitError(f"{value!r} is not a duration; use a number with ns/us/ms/s, e.g. '10us'")
    ns = float(match["num"]) * _DURATION_UNITS[match["unit"]]
    if not math.isfinite(ns) or round(ns) <= 0:
        raise UnitError(f"{value!r} must be a positive duration of at least 1ns")
    return int(round(ns))


def format_rate(bps: float) -> str:
    """Format bit/s for people: ``format_rate(4e11) == '400G'``."""
    for prefix, scale in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(bps) >= scale:
            return f"{bps / scale:.4g}{prefix}"
    return f"{bps:.4g}"


def format_bytes(size: float) -> str:
    """Format bytes for people: ``format_bytes(2e6) == '2MB'``."""
    for prefix, scale in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if abs(size) >= scale:
            return f"{size / scale:.4g}{prefix}"
    return f"{size:.4g}B"
