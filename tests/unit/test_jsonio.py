"""The one JSON convention (fabric/jsonio.py): infinity as "inf", undefined as null, atomic writes."""

from __future__ import annotations

import json
import math

import numpy as np

from fabric.jsonio import dumps, number, plain, write_json


def test_plain_follows_the_convention():
    assert plain({"a": float("inf"), "b": float("nan"), "c": np.int64(3), 4: [np.float32(0.5)], "d": -math.inf}) == \
        {"a": "inf", "b": None, "c": 3, "4": [0.5], "d": "-inf"}


def test_number_reads_back_what_plain_wrote():
    for v in (1.5, 0, math.inf, -math.inf):
        assert number(plain(v)) == v
    assert number(plain(float("nan"))) is None
    assert number("n/a") is None and number(True) is None


def test_dumps_is_strict_json_and_deterministic(tmp_path):
    text = dumps({"b": math.inf, "a": 1})
    assert json.loads(text) == {"a": 1, "b": "inf"}
    assert text.index('"a"') < text.index('"b"')
    write_json(tmp_path / "x.json", {"v": np.float64(2.0)})
    assert json.loads((tmp_path / "x.json").read_text()) == {"v": 2.0}
    assert [p.name for p in tmp_path.iterdir()] == ["x.json"]  # no temporary file left
