"""fabric crosscheck's comparison: per class and figure, relative difference and agreement."""

from __future__ import annotations

from fabric.crosscheck import TOLERANCE, compare_metrics
from fabric.report.terminal import crosscheck_table


def _metrics(loss, mct_p50, owd_p99, kind="kv"):
    return {"classes": {kind: {"loss_ratio": loss, "mct_ms": {"p50": mct_p50, "p99": mct_p50 * 2},
                               "owd_us": {"rx_p50": 10.0, "rx_p99": owd_p99}}}}


def test_rows_pair_each_figure_and_flag_disagreement():
    rows = {r.figure: r for r in compare_metrics(_metrics(0.0, 1.00, 50.0), _metrics(0.001, 1.05, 80.0))}
    assert set(rows) == {"loss", "MCT p50", "MCT p99", "OWD p50", "OWD p99"}
    assert rows["loss"].rel_diff == 0.0                      # both below the loss floor: no loss on either
    assert rows["MCT p50"].rel_diff == (1.05 - 1.00) / 1.05 and rows["MCT p50"].agrees
    assert rows["OWD p99"].rel_diff == (80 - 50) / 80 > TOLERANCE and rows["OWD p99"].agrees is False


def test_classes_on_one_engine_only_are_left_out_and_inf_is_not_comparable():
    emu, sim = _metrics(0.2, "inf", 5.0), _metrics(0.2, 3.0, 5.0)
    sim["classes"]["probe"] = emu["classes"]["kv"]
    rows = compare_metrics(emu, sim)
    assert {r.kind for r in rows} == {"kv"}
    mct = next(r for r in rows if r.figure == "MCT p50")
    assert mct.emu == float("inf") and mct.rel_diff is None and mct.agrees is None


def test_table_names_the_scale_and_marks_disagreement():
    rows = [r.to_dict() for r in compare_metrics(_metrics(0.30, 1.0, 50.0), _metrics(0.50, 1.0, 50.0))]
    text = crosscheck_table({"design": "d", "emu_fidelity": "trusted", "scale_k": 2000.0, "dilation": 1.0,
                             "tolerance": TOLERANCE, "rows": rows, "agree": False, "emu_dir": "e", "sim_dir": "s"})
    assert "k = 2000" in text and "DISAGREE" in text.splitlines()[2]


def test_a_p99_of_a_handful_of_messages_is_shown_but_not_compared():
    emu, sim = _metrics(0.0, 1.0, 50.0), _metrics(0.0, 1.0, 80.0)
    for m in (emu, sim):
        m["classes"]["kv"]["mct_ms"]["n"] = 30
        m["classes"]["kv"]["owd_us"]["n_rx"] = 5000
    rows = {r.figure: r for r in compare_metrics(emu, sim)}
    assert rows["MCT p99"].rel_diff is None and rows["MCT p99"].to_dict()["note"] == "p99 of 30 samples: not compared"
    assert rows["MCT p50"].rel_diff == 0.0
    assert rows["OWD p99"].agrees is False                   # 5,000 packets: compared, and 50 vs 80 µs disagree
