"""Numbers for people: the one place that turns a figure into display text.

Every command and every report formats its figures here, so the same value reads the same in
``fabric analyze``, ``fabric cpmt``, ``fabric compare`` and the HTML/Markdown report.

A figure may come straight from a JSON file fabric wrote (docs/design.md §3): infinity is the
string ``"inf"`` there and undefined is ``null``. Every function reads its value through
:func:`fabric.jsonio.number` first, so ``"inf"``, ``float("inf")`` and numpy scalars all work,
and shows

* an undefined value (None, NaN, anything non-numeric) as ``none`` (default :data:`NA`),
* an infinite one as ``inf`` (default :data:`INF`, the JSON spelling; the report tables pass
  :data:`INF_SIGN`).

Examples
--------
>>> usd(0.01234), usd(1234.5), usd("inf")
('$0.0123', '$1,234.50', 'inf')
>>> percent(0.25), percent(0.0004), percent(0.25, 3)
('25.0%', '0.040%', '25.000%')
>>> fixed(0.0123, 3, scale=1e3, suffix=" ms"), fixed(None, none="-")
('12.300 ms', '-')
>>> figure(1234.5), figure(12.345), figure(0.01234), figure(None)
('1,234', '12.35', '0.0123', 'n/a')
>>> rate(400e9), rate(12.5e9)
('400 Gbit/s', '12.5 Gbit/s')
"""

from __future__ import annotations

import math

from fabric.jsonio import number

NA = "n/a"
INF = "inf"
INF_SIGN = "∞"

__all__ = ["NA", "INF", "INF_SIGN", "figure", "fixed", "ratio", "percent", "usd", "count", "rate", "FIGURE_KINDS"]


def _special(value, none: str, inf: str) -> tuple[float | None, str | None]:
    """The value as a float, or the text that stands for it when it is undefined or infinite."""
    v = number(value)
    if v is None:
        return None, none
    if math.isinf(v):
        return None, inf if v > 0 else "-" + inf
    return v, None


def fixed(value, decimals: int = 1, *, scale: float = 1.0, suffix: str = "", none: str = NA, inf: str = INF) -> str:
    """``value × scale`` with a fixed number of decimals, then ``suffix`` (a unit, with its space)."""
    v, text = _special(value, none, inf)
    return text if text is not None else f"{v * scale:.{decimals}f}{suffix}"


def ratio(value, *, none: str = NA, inf: str = INF) -> str:
    """A dimensionless ratio such as η or max/mean: four decimals."""
    return fixed(value, 4, none=none, inf=inf)


def percent(value, decimals: int | None = None, *, none: str = NA, inf: str = INF) -> str:
    """A fraction as a percentage. ``decimals`` None adapts: three decimals below 1 % (a loss
    ratio of 0.04 % must not read 0.0 %), one above."""
    v, text = _special(value, none, inf)
    if text is not None:
        return text
    if decimals is None:
        decimals = 3 if v != 0 and abs(v) < 0.01 else 1
    return f"{v * 100:.{decimals}f}%"


def usd(value, decimals: int | None = None, *, none: str = NA, inf: str = INF) -> str:
    """A dollar amount. ``decimals`` None adapts: four decimals below $10 (a CPMT of $0.0123 must not
    read $0.01), cents above."""
    v, text = _special(value, none, inf)
    if text is not None:
        return text
    if decimals is None:
        decimals = 4 if abs(v) < 10 else 2
    return f"${v:,.{decimals}f}"


def count(value, *, none: str = NA, inf: str = INF) -> str:
    """A count (packets, messages, accelerators, dollars of capex): whole, with thousands separators."""
    v, text = _special(value, none, inf)
    return text if text is not None else f"{v:,.0f}"


def figure(value, kind: str = "num", *, none: str = NA, inf: str = INF) -> str:
    """One headline figure by kind (:data:`FIGURE_KINDS`); ``num`` keeps about three significant
    digits, never fewer than the integer part."""
    if kind != "num":
        return FIGURE_KINDS[kind](value, none=none, inf=inf)
    v, text = _special(value, none, inf)
    if text is not None:
        return text
    a = abs(v)
    if a >= 1000:
        return f"{v:,.0f}"
    if a >= 100:
        return f"{v:.1f}"
    if a >= 1:
        return f"{v:.2f}"
    if a == 0:
        return "0"
    return f"{v:.3g}"


FIGURE_KINDS = {"num": figure, "ratio": ratio, "pct": percent, "usd": usd, "int": count}


def rate(bps, *, none: str = NA, inf: str = INF) -> str:
    """A bit rate in the largest unit it reaches: ``400 Gbit/s``, ``12.5 Gbit/s``, ``800 bit/s``.

    (``fabric.units.format_rate`` writes the spec notation, ``400G``, which its parser reads back.)
    """
    v, text = _special(bps, none, inf)
    if text is not None:
        return text
    for unit, div in (("Tbit/s", 1e12), ("Gbit/s", 1e9), ("Mbit/s", 1e6), ("kbit/s", 1e3)):
        if v >= div:
            return f"{v / div:g} {unit}"
    return f"{v:g} bit/s"
