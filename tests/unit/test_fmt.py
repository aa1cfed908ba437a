"""fabric.fmt: one formatter for every figure fabric shows; JSON infinity ("inf") and null read
back like the numbers they stand for."""

from __future__ import annotations

import doctest
import math

import numpy as np
import pytest

from fabric import fmt
from fabric.jsonio import plain


def test_doctests():
    assert doctest.testmod(fmt).failed == 0


@pytest.mark.parametrize("f", [fmt.figure, fmt.fixed, fmt.ratio, fmt.percent, fmt.usd, fmt.count, fmt.rate])
def test_infinity_and_undefined_read_the_same_from_json_and_from_python(f):
    assert f(math.inf) == f("inf") == f(plain(math.inf)) == "inf"
    assert f(-math.inf) == f("-inf") == "-inf"
    assert f(math.inf, inf="∞") == "∞"
    for undefined in (None, math.nan, "abc", True, plain(math.nan)):
        assert f(undefined) == "n/a"
        assert f(undefined, none="-") == "-"


def test_numpy_scalars_format_like_floats():
    assert fmt.ratio(np.float64(0.5)) == fmt.ratio(0.5) == "0.5000"
    assert fmt.count(np.int64(12345)) == "12,345"


def test_small_fractions_and_amounts_keep_their_digits():
    assert fmt.percent(0.00042) == "0.042%"        # a small loss ratio must not read 0.0%
    assert fmt.percent(0.0) == "0.0%"
    assert fmt.usd(0.0123) == "$0.0123"            # a CPMT below a cent must not read $0.01
    assert fmt.usd(12.345) == "$12.35"
    assert fmt.usd(1234.5, 0) == "$1,234"
    assert fmt.fixed(0.0015, 3, scale=1e3, suffix=" ms") == "1.500 ms"


def test_figure_kinds_dispatch():
    assert set(fmt.FIGURE_KINDS) == {"num", "ratio", "pct", "usd", "int"}
    assert fmt.figure(0.25, "pct") == fmt.percent(0.25)
    assert fmt.figure(3.0, "usd") == fmt.usd(3.0)
    assert fmt.figure(0.0) == "0" and fmt.figure(150.25) == "150.2" and fmt.figure(-2.5) == "-2.50"
    with pytest.raises(KeyError):
        fmt.figure(1.0, "furlongs")


def test_rate_picks_the_largest_unit_reached():
    assert fmt.rate(1.6e12) == "1.6 Tbit/s"
    assert fmt.rate(400e9) == "400 Gbit/s"
    assert fmt.rate(2.5e6) == "2.5 Mbit/s"
    assert fmt.rate(800) == "800 bit/s"
