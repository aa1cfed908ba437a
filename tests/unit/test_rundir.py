"""The run-directory contract: run.json validated and versioned, the previous format upgraded,
and a run directory that appears whole or not at all."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from fabric import rundir
from fabric.errors import RunDirError, SpecError
from tests.rundirs import run_json, write_run


def _write_raw(path, data):
    path.mkdir(parents=True, exist_ok=True)
    (path / "run.json").write_text(json.dumps(data))
    return path


def test_run_json_round_trips_every_contract_key(tmp_path):
    d = write_run(tmp_path / "run", {}, scale_k=50.0, host_side_drops=0)
    run = rundir.read_run_json(d)
    assert run["format"] == rundir.FORMAT and run["engine"] == "emu" and run["scale_k"] == 50.0
    assert run["host_side_drops"] == 0                               # engine details sit beside the contract
    h2 = run["nodes"]["h2"]
    assert {k: h2[k] for k in ("role", "tier", "index", "edge", "nic_rate_bps")} == \
        {"role": "host", "tier": "host", "index": 2, "edge": "leaf1", "nic_rate_bps": 400_000_000_000}
    assert h2["address"].count(".") == 3 and {"group", "accelerator", "host_role"} <= set(h2)
    assert rundir.core_switches(run) == {"spine0": 0, "spine1": 1}
    assert rundir.fabric_spec(run).hosts == 4


@pytest.mark.parametrize("key, value, message", [
    ("scale_k", "abc", "key 'scale_k' is 'abc', expected a number"),
    ("engine", "hardware", "key 'engine' is 'hardware', expected one of emu, sim"),
    ("seed", True, "key 'seed' is True, expected an integer"),
    ("nodes", None, "key 'nodes' is None, expected a mapping"),
])
def test_a_corrupted_key_is_named_in_one_line(tmp_path, key, value, message):
    d = write_run(tmp_path / "run", {})
    data = json.loads((d / "run.json").read_text())
    data[key] = value
    _write_raw(d, data)
    with pytest.raises(RunDirError) as err:
        rundir.read_run_json(d)
    assert message in str(err.value) and str(d / "run.json") in str(err.value)
    assert "\n" not in str(err.value)


def test_a_missing_key_is_named(tmp_path):
    d = write_run(tmp_path / "run", {})
    data = json.loads((d / "run.json").read_text())
    del data["tmax_ns"]
    _write_raw(d, data)
    with pytest.raises(RunDirError, match="key 'tmax_ns' is missing"):
        rundir.read_run_json(d)


def test_the_previous_format_is_upgraded_in_memory(tmp_path):
    v2 = run_json().to_dict()
    v1 = {k: v for k, v in v2.items() if k not in ("engine", "engine_version", "nodes", "idle_path_delay_ns")}
    v1["format"] = 1
    v1["tools"] = {"kernel": "6.1.0"}
    d = _write_raw(tmp_path / "old", v1)
    run = rundir.read_run_json(d)
    assert run["engine"] == "emu" and run["engine_version"] == "linux 6.1.0"
    assert run["nodes"] == v2["nodes"] and run["idle_path_delay_ns"] is None
    assert json.loads((d / "run.json").read_text())["format"] == 1   # the file is left as it is


def test_a_newer_format_says_what_to_do(tmp_path):
    d = _write_raw(tmp_path / "new", run_json().to_dict() | {"format": rundir.FORMAT + 1})
    with pytest.raises(RunDirError, match="newer fabric.*upgrade fabric"):
        rundir.read_run_json(d)


def test_idle_path_delay_comes_from_the_noise_probe_when_the_engine_does_not_state_it(tmp_path):
    noise = pd.DataFrame({"msg_id": [0, 1, 2], "seq": 0, "src": "h0", "dst": "h2", "bytes": 64,
                          "tx_ns": [0, 100, 200], "rx_ns": [7_000, 8_100, 9_200], "copies": 1, "path": 0})
    d = write_run(tmp_path / "run", {"noise": noise})
    assert rundir.read_run_json(d)["idle_path_delay_ns"] == 8_000


def test_staged_run_dir_appears_whole_or_not_at_all(tmp_path):
    out = tmp_path / "deep" / "runs" / "x"
    with pytest.raises(KeyboardInterrupt):
        with rundir.staged_run_dir(out) as stage:
            (stage / "packets.parquet").write_text("half")
            raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []                            # nor the parents it created
    with rundir.staged_run_dir(out) as stage:
        assert stage.parent == out.parent and stage.name.startswith(".x.partial-")
        (stage / "run.json").write_text("{}")
    assert sorted(p.name for p in out.parent.iterdir()) == ["x"] and (out / "run.json").exists()
    with pytest.raises(SpecError, match="not an empty directory"):
        with rundir.staged_run_dir(out):
            pass
