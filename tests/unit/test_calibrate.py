"""The packet budget calibration without root: machine key and freshness, the cache file, the
search and the budget it picks from a ladder (with a model machine), and what doctor says."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

import fabric.emu.calibrate as cb
from fabric.errors import EmulationError


def calibration(**overrides) -> cb.Calibration:
    data = {"budget_pps": 22_500, "sustained_pps": 28_500, "safety_margin": 0.8,
            "measured_at": "2026-12-01T08:00:00+00:00", "machine": cb.machine_key(), "wall_s": 25.0,
            "ladder": [{"offered_pps": 10_000.0, "delivered_pps": 10_100, "lost": 0.0, "emulator_loss": 0.0,
                        "sender_shortfall": 0.0, "verdict": "trusted", "ok": True}]}
    data.update(overrides)
    return cb.Calibration(**data)


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("FABRIC_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


# -- machine key, cache location, freshness ------------------------------------------------

def test_machine_key_names_what_the_budget_depends_on():
    key = cb.machine_key()
    assert set(key) == {"kernel", "cpus", "boot_id", "fabric_version", "sender"}
    assert key["cpus"] == os.cpu_count()
    assert key["boot_id"] == Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    assert len(key["sender"]["sha256"]) == 64


def test_agents_key_changes_with_either_agent_source(tmp_path):
    (tmp_path / "sender.c").write_text("int main(void) { return 0; }")
    (tmp_path / "receiver.c").write_text("int main(void) { return 0; }")
    first = cb.sender_implementation(tmp_path)
    assert first["impl"] == "native" and len(first["sha256"]) == 64
    (tmp_path / "receiver.c").write_text("int main(void) { return 1; }")
    second = cb.sender_implementation(tmp_path)
    assert second["sha256"] != first["sha256"]
    (tmp_path / "sender.c").write_text("int main(void) { return 1; }")
    assert cb.sender_implementation(tmp_path)["sha256"] not in (first["sha256"], second["sha256"])


def test_cache_dir_env_root_and_user(monkeypatch, tmp_path):
    monkeypatch.setenv("FABRIC_CACHE_DIR", str(tmp_path))
    assert cb.cache_dir() == tmp_path
    monkeypatch.delenv("FABRIC_CACHE_DIR")
    monkeypatch.setattr(cb.os, "geteuid", lambda: 0)
    assert cb.cache_dir() == Path("/var/cache/fabric")
    monkeypatch.setattr(cb.os, "geteuid", lambda: 1000)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cb.cache_dir() == tmp_path / "home" / ".cache" / "fabric"


def test_a_calibration_from_this_machine_and_boot_is_fresh(cache):
    cb.save_calibration(calibration())
    assert cb.load_calibration() == calibration()


@pytest.mark.parametrize("field, value", [("boot_id", "00000000-another-boot"), ("kernel", "5.10.0-other"),
                                          ("cpus", 64), ("fabric_version", "0.0.1")])
def test_another_boot_kernel_cpu_count_or_version_is_stale(cache, field, value):
    cb.save_calibration(calibration(machine=cb.machine_key() | {field: value}))
    assert cb.load_calibration() is None


def test_a_changed_sender_is_stale(cache):
    key = cb.machine_key()
    cb.save_calibration(calibration(machine=key | {"sender": key["sender"] | {"sha256": "0" * 64}}))
    assert cb.load_calibration() is None


def test_a_reboot_makes_the_cache_stale(cache, monkeypatch):
    cb.save_calibration(calibration())
    monkeypatch.setattr(cb, "_boot_id", lambda: "after-a-reboot")
    assert cb.load_calibration() is None


def test_missing_corrupt_or_foreign_cache_reads_as_not_calibrated(cache):
    assert cb.load_calibration() is None
    cache.mkdir()
    cb.cache_path().write_text("{not json")
    assert cb.load_calibration() is None
    cb.cache_path().write_text(json.dumps(calibration().to_dict() | {"format": 99}))
    assert cb.load_calibration() is None


# -- atomic write ---------------------------------------------------------------------------

def test_write_read_round_trip_leaves_no_temp_files(cache):
    path = cb.save_calibration(calibration())
    assert path == cache / "calibration.json"
    assert json.loads(path.read_text())["budget_pps"] == 22_500
    assert cb.Calibration.from_dict(json.loads(path.read_text())) == calibration()
    assert sorted(p.name for p in cache.iterdir()) == ["calibration.json"]


def test_a_failed_write_keeps_the_previous_file_whole(cache, monkeypatch):
    cb.save_calibration(calibration())
    before = cb.cache_path().read_text()

    def broken_dump(obj, fh, **kw):
        fh.write('{"budget_pps": 1')  # half a document, then the disk fills
        raise OSError("no space left on device")

    monkeypatch.setattr(cb.json, "dump", broken_dump)
    with pytest.raises(OSError):
        cb.save_calibration(calibration(budget_pps=1))
    assert cb.cache_path().read_text() == before
    assert sorted(p.name for p in cache.iterdir()) == ["calibration.json"]


# -- the search and the budget --------------------------------------------------------------

def model_machine(holds_up_to_pps: float, lucky: set[float] = frozenset()):
    """A run_step for a machine whose senders keep up to ``holds_up_to_pps`` (plus lucky passes)."""
    def step(offered_pps: float, workdir: Path) -> dict:
        ok = offered_pps <= holds_up_to_pps or offered_pps in lucky
        return {"offered_pps": offered_pps, "k": 1.0, "delivered_pps": int(min(offered_pps, holds_up_to_pps * 1.1)),
                "lost": 0.0, "queue_drop_share": 0.0, "emulator_loss": 0.0, "host_side_loss": 0.0,
                "sender_shortfall": 0.0 if ok else 0.2, "owd_p99_us": 50.0,
                "verdict": "trusted" if ok else "untrusted", "wall_s": 4.0}
    return step


def test_ladder_then_bisection_then_a_confirmation(cache):
    cal = cb.calibrate(run_step=model_machine(31_000))
    offered = [s["offered_pps"] for s in cal.ladder]
    assert offered[:3] == [10_000, 20_000, 40_000]            # coarse ladder to the first failure
    assert offered[-1] == offered[-2] == cal.sustained_pps    # the answer, run twice
    assert 31_000 / cb.BISECT_UNTIL_RATIO <= cal.sustained_pps <= 31_000
    assert len(offered) <= 8, "calibration must stay short"
    assert cal.budget_pps == int(cal.sustained_pps * cb.SAFETY_MARGIN // cb.ROUND_PPS * cb.ROUND_PPS)
    assert cb.load_calibration() == cal, "calibrate caches its result"


def test_a_slow_machine_steps_down_below_the_first_load(cache):
    cal = cb.calibrate(run_step=model_machine(6_000), save=False)
    assert cal.ladder[0]["offered_pps"] == 10_000 and not cal.ladder[0]["ok"]
    assert 6_000 / cb.BISECT_UNTIL_RATIO <= cal.sustained_pps <= 6_000
    assert cb.load_calibration() is None


def test_a_failed_confirmation_resumes_the_search_below_it_within_the_step_cap(cache):
    seen: dict[float, int] = {}
    steady = model_machine(31_000)

    def flaky(offered_pps, workdir):  # every load above 20k passes once, then fails when repeated
        seen[offered_pps] = seen.get(offered_pps, 0) + 1
        step = steady(offered_pps, workdir)
        if offered_pps > 20_000 and seen[offered_pps] > 1:
            step.update(sender_shortfall=0.2, verdict="untrusted")
        return step

    cal = cb.calibrate(run_step=flaky, save=False)
    assert len(cal.ladder) <= cb.MAX_STEPS
    failed = {s["offered_pps"] for s in cal.ladder if not s["ok"]}
    assert cal.sustained_pps not in failed and cal.sustained_pps < min(failed)


def test_a_machine_that_holds_nothing_is_refused(cache):
    with pytest.raises(EmulationError, match="cannot keep even"):
        cb.calibrate(run_step=model_machine(100), save=False)


def test_budget_is_the_highest_load_held_below_every_failure_times_the_margin():
    def step(offered, ok):
        return {"offered_pps": offered, "ok": ok}
    ladder = [step(10_000, True), step(20_000, True), step(40_000, False), step(28_500, True),
              step(34_000, False), step(31_000, True), step(31_000, False), step(80_000, True)]
    # 31k held once and failed once: failed. 80k above a failure: a lucky step, ignored.
    assert cb.budget_from_ladder(ladder, margin=0.8) == (28_500, 22_500)
    assert cb.budget_from_ladder([step(10_000, True)], margin=0.5) == (10_000, 5_000)


def test_step_holds_with_senders_on_schedule_and_no_loss_of_the_emulators_own():
    from fabric.analysis.fidelity import THRESHOLDS
    base = {"sender_shortfall": 0.0, "emulator_loss": 0.0, "host_side_loss": 0.0}
    assert cb.step_holds(base)
    assert cb.step_holds(base | {"sender_shortfall": cb.HOLD_SHORTFALL})
    assert not cb.step_holds(base | {"sender_shortfall": cb.HOLD_SHORTFALL + 0.001})
    # Stricter than the signal's warning: a run at the budget must not lose the idle bound's 5% there.
    assert cb.HOLD_SHORTFALL < THRESHOLDS["sender_rate_shortfall"][0] / 2
    assert not cb.step_holds(base | {"emulator_loss": 1e-5}), "any loss of the emulator's own fails a step"
    assert not cb.step_holds(base | {"host_side_loss": 1e-5})
    assert not cb.step_holds(base | {"sender_shortfall": None})


# -- doctor ---------------------------------------------------------------------------------

def doctor_app(monkeypatch) -> typer.Typer:
    """`fabric doctor` with the kernel probes replaced (they need root): a ready machine."""
    import fabric.commands.doctor as cmd
    from fabric.doctor import Check
    monkeypatch.setattr(cmd, "run_checks", lambda: [Check("root", True, "running as root", True, "all emulation")])
    app = typer.Typer(add_completion=False)
    app.command()(cmd.doctor)
    return app


def test_doctor_says_how_to_calibrate_when_not_calibrated(cache, monkeypatch):
    res = CliRunner().invoke(doctor_app(monkeypatch), [])
    assert res.exit_code == 0, res.output
    assert ("not calibrated on this boot yet: the first `fabric run` calibrates, or `fabric doctor --calibrate`"
            in res.output)
    res = CliRunner().invoke(doctor_app(monkeypatch), ["--json"])
    data = json.loads(res.output)
    assert data["budget"] is None and data["budget_summary"].startswith("not calibrated")


def test_doctor_prints_the_calibrated_budget(cache, monkeypatch):
    cb.save_calibration(calibration())
    res = CliRunner().invoke(doctor_app(monkeypatch), [])
    assert "22,500 packets/s (0.8 x 28,500 held" in res.output
    assert json.loads(CliRunner().invoke(doctor_app(monkeypatch), ["--json"]).output)["budget"]["budget_pps"] == 22_500


def test_doctor_calibrate_prints_progress_ladder_and_budget(cache, monkeypatch):
    real = cb.calibrate
    monkeypatch.setattr(cb, "calibrate", lambda progress=None: real(progress=progress, run_step=model_machine(31_000)))
    res = CliRunner().invoke(doctor_app(monkeypatch), ["--calibrate"])
    assert res.exit_code == 0, res.output
    assert "calibrating the packet budget" in res.output
    assert "offered pkt/s" in res.output and "holds" in res.output and "fails" in res.output
    assert f"{cb.load_calibration().budget_pps:,} packets/s" in res.output


# -- the runner's budget --------------------------------------------------------------------

def test_runner_records_a_given_budget_or_the_calibration_it_used(cache, monkeypatch):
    from fabric.emu import runner
    stages = []
    assert runner._resolve_budget(20_000, lambda stage, fraction: stages.append(stage)) == (
        20_000, {"source": "--budget", "pps": 20_000})
    assert stages == [], "a given budget needs no calibration"
    cb.save_calibration(calibration())
    pps, facts = runner._resolve_budget(None, lambda stage, fraction: stages.append(stage))
    assert pps == 22_500
    assert facts == {"source": "calibration", "pps": 22_500, "sustained_pps": 28_500, "safety_margin": 0.8,
                     "measured_at": "2026-12-01T08:00:00+00:00", "machine": cb.machine_key()}
    assert runner.RunOptions().budget_pps is None
