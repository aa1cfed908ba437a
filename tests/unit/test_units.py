"""Human units (rates, sizes, durations) parsed at the spec boundary, and their refusals."""

from __future__ import annotations

import doctest

import pytest

import fabric.units
from fabric.units import UnitError, format_bytes, format_rate, parse_bytes, parse_duration_ns, parse_rate_bps


@pytest.mark.parametrize("text, bps", [
    ("400G", 400_000_000_000),
    ("100Gbps", 100_000_000_000),
    ("25 Gbit/s", 25_000_000_000),
    ("25Gb/s", 25_000_000_000),
    ("1e9", 1_000_000_000),
    (1e9, 1_000_000_000),
    (10_000, 10_000),
    ("12.5Mbps", 12_500_000),
    ("1.6T", 1_600_000_000_000),
    ("800k", 800_000),
    ("10 M", 10_000_000),
    (" 400G ", 400_000_000_000),
])
def test_rates_parse_to_bits_per_second(text, bps):
    assert parse_rate_bps(text) == bps
    assert isinstance(parse_rate_bps(text), int)


@pytest.mark.parametrize("text, size", [
    ("2MB", 2_000_000),
    ("64KiB", 65_536),
    ("2MiB", 2_097_152),
    ("4096", 4096),
    (4096, 4096),
    ("1.5KB", 1500),
    ("8 MB", 8_000_000),
    ("1GiB", 1024**3),
    ("9000B", 9000),
])
def test_sizes_parse_to_bytes(text, size):
    assert parse_bytes(text) == size
    assert isinstance(parse_bytes(text), int)


@pytest.mark.parametrize("text, ns", [
    ("10us", 10_000),
    ("10µs", 10_000),
    ("2ms", 2_000_000),
    ("1.5s", 1_500_000_000),
    ("250ns", 250),
    ("5 ms", 5_000_000),
])
def test_durations_parse_to_nanoseconds(text, ns):
    assert parse_duration_ns(text) == ns
    assert isinstance(parse_duration_ns(text), int)


# (parser, bad value, words the message must contain so the user knows what is wrong and what works)
REFUSALS = [
    # negative
    (parse_rate_bps, "-5G", ["-5G", "positive"]),
    (parse_rate_bps, -1e9, ["positive"]),
    (parse_bytes, "-2MB", ["-2MB", "positive"]),
    (parse_duration_ns, "-10us", ["-10us", "positive"]),
    # zero, written plainly or reached by rounding a fraction of the base unit
    (parse_rate_bps, 0, ["positive"]),
    (parse_rate_bps, "0G", ["0G", "positive"]),
    (parse_rate_bps, "0.4", ["positive"]),
    (parse_bytes, "0MB", ["0MB", "positive"]),
    (parse_bytes, "0.4", ["positive"]),
    (parse_duration_ns, "0ms", ["positive"]),
    (parse_duration_ns, "0.1ns", ["positive"]),
    # garbage
    (parse_rate_bps, "fast", ["'fast'", "not a rate", "400G"]),
    (parse_rate_bps, "", ["not a rate"]),
    (parse_rate_bps, None, ["not a rate"]),
    (parse_rate_bps, "nan", ["not a rate"]),
    (parse_rate_bps, "1e400", ["positive"]),  # overflows to infinity
    (parse_bytes, "lots", ["'lots'", "not a size", "2MB"]),
    (parse_bytes, "2 MB extra", ["not a size"]),
    (parse_duration_ns, "soon", ["'soon'", "not a duration", "10us"]),
    # booleans (YAML turns yes/no/on/off into them)
    (parse_rate_bps, True, ["True", "boolean", "rate"]),
    (parse_bytes, False, ["False", "boolean", "size"]),
    (parse_duration_ns, True, ["True", "boolean", "duration"]),
    # wrong unit: a size where a rate belongs, and so on
    (parse_rate_bps, "2MB", ["'2MB'", "not a rate"]),
    (parse_rate_bps, "10us", ["not a rate"]),
    (parse_bytes, "10us", ["'10us'", "not a size"]),
    (parse_bytes, "400Gbps", ["not a size"]),
    (parse_bytes, "2mb", ["not a size", "MB"]),  # millibits are not a size
    (parse_duration_ns, "2MB", ["'2MB'", "not a duration"]),
    (parse_duration_ns, "10", ["not a duration", "ns/us/ms/s"]),  # a bare number has no unit
    (parse_duration_ns, 10, ["not a duration"]),
]


@pytest.mark.parametrize("parse, value, words", REFUSALS,
                         ids=[f"{p.__name__}-{v!r}" for p, v, _ in REFUSALS])
def test_bad_values_are_refused_with_a_helpful_message(parse, value, words):
    with pytest.raises(UnitError) as info:
        parse(value)
    message = str(info.value)
    for word in words:
        assert word in message, f"{word!r} missing from {message!r}"


def test_unit_error_is_a_value_error():
    # Callers outside fabric can catch it as the builtin they expect.
    with pytest.raises(ValueError):
        parse_rate_bps("fast")


def test_decimal_and_binary_prefixes_differ():
    assert parse_bytes("1KB") == 1000
    assert parse_bytes("1KiB") == 1024
    assert parse_bytes("1MiB") - parse_bytes("1MB") == 48_576


@pytest.mark.parametrize("bps, text", [(4e11, "400G"), (3.2e12, "3.2T"), (2.5e7, "25M"), (1500, "1.5k"), (12, "12")])
def test_format_rate(bps, text):
    assert format_rate(bps) == text


@pytest.mark.parametrize("size, text", [(2e6, "2MB"), (8e9, "8GB"), (1500, "1.5KB"), (64, "64B")])
def test_format_bytes(size, text):
    assert format_bytes(size) == text


@pytest.mark.parametrize("text", ["400G", "25G", "1.6T", "100M"])
def test_format_rate_round_trips(text):
    assert format_rate(parse_rate_bps(text)) == text


def test_docstring_examples():
    result = doctest.testmod(fabric.units, verbose=False)
    assert result.attempted >= 6, "units.py examples went missing"
    assert result.failed == 0
