"""--window: a slice of a long schedule, times unchanged; bad windows are one clear error."""

from __future__ import annotations

import pandas as pd
import pytest

from fabric.errors import SpecError
from fabric.schedule import parse_window, window


def _schedule():
    return pd.DataFrame({"msg_id": range(5), "t_start_s": [0.0, 1.39, 1.4, 1.45, 1.5], "src": "h0", "dst": "h1",
                         "bytes": 100, "kind": "kv"})


def test_window_keeps_messages_starting_inside_and_their_times():
    out = window(_schedule(), *parse_window("1.4s:100ms"))
    assert out["msg_id"].tolist() == [2, 3] and out["t_start_s"].tolist() == [1.4, 1.45]


@pytest.mark.parametrize("text, says", [("1.4s", "START:LENGTH"), ("x:1ms", "not a duration"),
                                        ("1s:0ms", "positive")])
def test_bad_windows_name_the_option(text, says):
    with pytest.raises(SpecError, match=says) as err:
        parse_window(text)
    assert str(err.value).startswith("--window")


def test_an_empty_window_says_where_the_schedule_is():
    with pytest.raises(SpecError, match="spans 0–1.5 s"):
        window(_schedule(), 3.0, 0.1)
