"""``bitmill report search``: searched and uniform policies fine-tuned, exported, measured on
the integer path and simulated on every configuration; finished runs reused."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from bitmill.errors import BitmillError

from tests.conftest import assert_one_error_line


@pytest.fixture
def fp(fp_resnet8):
    return fp_resnet8


@pytest.mark.slow
def test_report_measures_every_point_and_reuses_runs(fp, tmp_path, run_cli, monkeypatch):
    monkeypatch.setenv("BITMILL_CACHE", str(tmp_path / "cache"))
    args = ("report", "search", "--init", fp, "--model", "resnet8", "--configs", "sim-4x4-k16,ulx3s-85f",
            "--methods", "ilp", "--budget-ratios", "0.8", "--uniform", "w8a8", "--qat-epochs", "1",
            "--train-subset", "32", "--test-subset", "16", "--dataset", "synthetic", "--calib-images", "16",
            "--samples", "1", "--min-bits", "6", "--runs", tmp_path / "runs", "--out", tmp_path / "rep")
    status, out, err = run_cli(*args)
    assert status == 0, err
    doc = json.loads((tmp_path / "rep" / "results.json").read_text())
    rows = {r["name"]: r for r in doc["rows"]}
    assert set(rows) == {"fp", "w8a8", "ilp-sim-4x4-k16-0.8", "ilp-ulx3s-85f-0.8"}
    ilp = rows["ilp-sim-4x4-k16-0.8"]
    assert set(ilp["cycles"]) == {"sim-4x4-k16", "ulx3s-85f"} and 0 <= ilp["integer"] <= 1
    assert ilp["cycles"]["sim-4x4-k16"] < rows["w8a8"]["cycles"]["sim-4x4-k16"]
    assert abs(ilp["predicted"] / ilp["cycles"]["sim-4x4-k16"] - 1) < 0.01
    readme = (tmp_path / "rep" / "README.md").read_text()
    assert "| ilp-ulx3s-85f-0.8 | ilp | 0.8 x W8A8 on ulx3s-85f" in readme
    assert all((tmp_path / "rep" / f).exists() for f in ("pareto.png", "bits-ilp-sim-4x4-k16-0.8.png"))
    status, _, err = run_cli(*args, "--finished-only")
    assert status == 0 and json.loads((tmp_path / "rep" / "results.json").read_text())["rows"] == doc["rows"]


def test_train_only_fine_tunes_and_a_later_run_measures_without_training(fp, tmp_path, run_cli):
    args = ("report", "search", "--init", fp, "--model", "resnet8", "--configs", "sim-4x4-k16", "--methods", "",
            "--uniform", "w8a8", "--qat-epochs", "1", "--train-subset", "32", "--test-subset", "16",
            "--dataset", "synthetic", "--runs", tmp_path / "runs", "--out", tmp_path / "rep")
    status, out, err = run_cli(*args, "--train-only")
    assert status == 0, err
    run = tmp_path / "runs" / "qat" / "w8a8"
    assert (run / "metrics.json").exists() and not (run / "eval.json").exists() and not (tmp_path / "rep").exists()
    assert "fine-tuned 1 policies" in out
    stamp = (run / "checkpoint.pt").stat().st_mtime_ns
    status, _, err = run_cli(*args)
    assert status == 0, err
    assert (run / "checkpoint.pt").stat().st_mtime_ns == stamp
    rows = {r["name"]: r for r in json.loads((tmp_path / "rep" / "results.json").read_text())["rows"]}
    assert rows["w8a8"]["cycles"]["sim-4x4-k16"] > 0 and 0 <= rows["w8a8"]["integer"] <= 1
    status, _, err = run_cli(*args, "--train-only", "--finished-only")
    assert_one_error_line(status, err, "--train-only and --finished-only exclude each other")


def test_bad_input_is_one_error_line(fp, tmp_path, run_cli):
    status, _, err = run_cli("report", "search", "--init", fp, "--methods", "ilp,haq", "--out", tmp_path / "r")
    assert_one_error_line(status, err, "unknown method 'haq'; choose ilp, ilpq, sdq")
    status, _, err = run_cli("report", "search", "--init", tmp_path / "none.pt", "--out", tmp_path / "r")
    assert_one_error_line(status, err, "no such FP checkpoint")


def test_bad_search_entry_is_one_error_line(fp, tmp_path, run_cli):
    for entry in ("ilp:pynq-z2:0.5", "haq:ulx3s-85f:0.5", "ilp:ulx3s-85f:1.5", "ilp:ulx3s-85f", "ilp:ulx3s-85f:x",
                  "sdq:ulx3s-85f:w4a4", "ilpq:ulx3s-85f:w9a4"):
        status, _, err = run_cli("report", "search", "--init", fp, "--configs", "ulx3s-85f", "--search", entry,
                                 "--out", tmp_path / "r")
        assert_one_error_line(status, err, f"--search {entry!r}: expected METHOD:CONFIG:RATIO")
    assert not (tmp_path / "r").exists()


def test_search_plan_is_the_entries_or_the_product():
    from argparse import Namespace

    from bitmill.cli.report_search import search_plan
    from bitmill.config import AccelConfig
    cfgs = [AccelConfig.resolve("ulx3s-85f"), AccelConfig.resolve("pynq-z2")]
    product = search_plan(Namespace(search=None, methods=["ilp", "sdq"], budget_ratios=[0.3, 0.5]), cfgs)
    assert [(e.method, e.config.name, e.ratio) for e in product] == [
        ("ilp", "ulx3s-85f", 0.3), ("ilp", "ulx3s-85f", 0.5), ("sdq", "ulx3s-85f", 0.3), ("sdq", "ulx3s-85f", 0.5),
        ("ilp", "pynq-z2", 0.3), ("ilp", "pynq-z2", 0.5), ("sdq", "pynq-z2", 0.3), ("sdq", "pynq-z2", 0.5)]
    chosen = search_plan(Namespace(search=["sdq:pynq-z2:0.55", "ilp:ulx3s-85f:0.35", "ilp:pynq-z2:0.25:a4"],
                                   methods=["ilp"], budget_ratios=[0.3]), cfgs)
    assert [(e.method, e.config.name, e.ratio, e.min_act_bits) for e in chosen] == [
        ("sdq", "pynq-z2", 0.55, None), ("ilp", "ulx3s-85f", 0.35, None), ("ilp", "pynq-z2", 0.25, 4)]
    assert [e.name for e in chosen] == ["sdq-pynq-z2-0.55", "ilp-ulx3s-85f-0.35", "ilp-pynq-z2-0.25-a4"]
    iso = search_plan(Namespace(search=["ilpq:pynq-z2:W4A4", "ilpq:ulx3s-85f:0.3:a3"], methods=["ilp"],
                                budget_ratios=[0.3]), cfgs)
    assert [(e.method, e.ratio, e.target, e.min_act_bits, e.name) for e in iso] == [
        ("ilpq", None, "w4a4", None, "ilpq-pynq-z2-w4a4"), ("ilpq", 0.3, None, 3, "ilpq-ulx3s-85f-0.3-a3")]
    for bad in ("ilp:pynq-z2:0.25:4", "ilp:pynq-z2:0.25:a9", "ilp:pynq-z2:0.25:a4:x", "ilp:pynq-z2:0.25:ab"):
        with pytest.raises(BitmillError, match="METHOD:CONFIG:RATIO"):
            search_plan(Namespace(search=[bad], methods=["ilp"], budget_ratios=[0.3]), cfgs)


def test_goal_lines_state_met_and_missed_goals():
    from bitmill.cli.report_search import _goal_lines
    w4 = {"name": "w4a4", "integer": 0.89, "cycles": {"c": 1000}}
    w8 = {"name": "w8a8", "integer": 0.892, "cycles": {"c": 2000}}
    fast = {"name": "ilp-c-0.3", "integer": 0.8895, "cycles": {"c": 600}, "policy": {"l": "w4a2"}}
    lines = _goal_lines([w4, w8, fast], {"fake_quant": 0.8945}, "c")
    assert lines[2] == "- accuracy >= W4A4's (89.00%) - 0.1 in <= 0.67 x its cycles (670): met by ilp-c-0.3"
    assert lines[3] == ("- within 0.5 point of FP (89.45%) in <= 0.25 x W8A8's cycles: not met; the fastest "
                        "measured policy takes 0.300 x W8A8's cycles")
    slow = dict(fast, cycles={"c": 700})
    assert "not met; closest ilp-c-0.3: 88.95% in 0.700 x W4A4's cycles" in _goal_lines([w4, w8, slow], None, "c")[2]
    cheap = dict(fast, integer=0.885, cycles={"c": 480})
    w2 = {"name": "w2a4", "integer": 0.887, "cycles": {"c": 450}}
    assert _goal_lines([w4, w8, cheap, w2], {"fake_quant": 0.8945}, "c")[3] == (
        "- within 0.5 point of FP (89.45%) in <= 0.25 x W8A8's cycles: not met; within 0.25 x W8A8's cycles "
        "the most accurate searched policy is ilp-c-0.3: 88.50% (0.95 points below FP) in 0.240 x W8A8's "
        "cycles; uniform policy is w2a4: 88.70% (0.75 points below FP) in 0.225 x W8A8's cycles")


def test_the_rtl_run_goes_to_the_policy_closest_to_the_first_goal():
    from bitmill.cli.report_search import _rtl_lines, closest_to_goal
    w4 = {"name": "w4a4", "integer": 0.89, "cycles": {"c": 1000}}
    accurate_slow = {"name": "ilp-c-0.5", "integer": 0.895, "cycles": {"c": 900}, "policy": {"l": "w4a4"}}
    fast = {"name": "sdq-c-0.3", "integer": 0.88, "cycles": {"c": 600}, "policy": {"l": "w4a2"}}
    assert closest_to_goal([w4, accurate_slow, fast], "c") is fast
    assert closest_to_goal([accurate_slow, fast], "c") is accurate_slow     # without W4A4: the most accurate
    assert closest_to_goal([w4], "c") is None
    fast["rtl"] = {"config": "c", "cycles": 600, "cycles_per_s": 12345, "run_seconds": 0.1, "build_seconds": 0}
    assert _rtl_lines([w4, fast])[0].startswith("On the RTL: sdq-c-0.3 (the searched policy closest to the "
                                                "first goal) ran on the Verilated RTL of the whole "
                                                "accelerator of c (`bitmill rtlsim`): 600 cycles, the "
                                                "simulator's 600;")
    assert _rtl_lines([w4]) == []


def _row(name, kind, acc, cycles, config=None, ratio=None):
    row = {"name": name, "kind": kind, "integer": acc, "cycles": cycles}
    if kind in ("ilp", "ilpq", "sdq"):
        row.update(policy={"l": "w4a4"}, config=config, ratio=ratio)
    return row


def test_frontier_lines_name_the_uniform_policies_that_dominate_a_searched_one():
    from bitmill.cli.report_search import _frontier_lines
    w4 = _row("w4a4", "uniform", 0.88, {"a": 1000, "b": 500})
    w2 = _row("w2a2", "uniform", 0.83, {"a": 600, "b": 400})
    ilp = _row("ilp-a-0.3", "ilp", 0.86, {"a": 650, "b": 520}, "a", 0.3)
    lines = _frontier_lines([w4, w2, ilp], ["a", "b"])
    assert lines[2] == "- a: searched for it: none of 1 dominated (2 uniform)"
    assert lines[3] == ("- b: searched for another configuration: ilp-a-0.3 (86.00%, 520) by "
                        "w4a4 (88.00%, 500)")
    own_b = _row("ilp-b-0.3", "ilp", 0.84, {"a": 900, "b": 450}, "b", 0.3)
    assert _frontier_lines([w4, w2, ilp, own_b], ["b"])[2] == (
        "- b: searched for it: none of 1 dominated (2 uniform); searched for another "
        "configuration: ilp-a-0.3 (86.00%, 520) by w4a4 (88.00%, 500)")
    assert _frontier_lines([w4, w2, ilp, own_b], ["a", "b"])[-2] == (
        "Dominated on the configuration each was searched for, per method: ilp 0 of 2.")
    slow_b = dict(own_b, name="sdq-b-0.3", kind="sdq", integer=0.80, cycles={"a": 900, "b": 600})
    assert _frontier_lines([w4, w2, ilp, slow_b], ["a", "b"])[-2] == (
        "Dominated on the configuration each was searched for, per method: ilp 0 of 1, sdq 1 of 1.")
    equal = _row("ilp-a-0.3", "ilp", 0.88, {"a": 1000, "b": 500}, "a", 0.3)    # a tie is no domination
    assert _frontier_lines([w4, equal], ["a", "b"])[3] == (
        "- b: searched for another configuration: none of 1 dominated (1 uniform)")
    assert _frontier_lines([w4], ["a"]) == []


def test_method_and_cross_lines_compare_like_with_like():
    from bitmill.cli.report_search import _cross_lines, _method_lines
    ilp_a = _row("ilp-a-0.3", "ilp", 0.86, {"a": 650, "b": 700}, "a", 0.3)
    sdq_a = _row("sdq-a-0.3", "sdq", 0.85, {"a": 600, "b": 640}, "a", 0.3)
    ilp_b = _row("ilp-b-0.3", "ilp", 0.87, {"a": 680, "b": 620}, "b", 0.3)
    ilp_b5 = _row("ilp-b-0.5", "ilp", 0.88, {"a": 900, "b": 800}, "b", 0.5)
    method = _method_lines([ilp_a, sdq_a, ilp_b, ilp_b5])
    assert method[2] == ("- a at 0.3 x W8A8: ilp 86.00% in 650, sdq 85.00% in 600: ilp more accurate by "
                         "1.00 points, sdq 7.7% faster")
    assert len(method) == 4
    cross = _cross_lines([ilp_a, sdq_a, ilp_b, ilp_b5], ["a", "b"])
    assert cross[2] == ("- ilp at 0.3 x W8A8, on a: its own policy 650; ilp-b-0.3 680 (+4.6%): the own policy "
                        "is the fastest")
    assert cross[3] == ("- ilp at 0.3 x W8A8, on b: its own policy 620; ilp-a-0.3 700 (+12.9%): the own policy "
                        "is the fastest")
    slow_b = dict(ilp_b, cycles={"a": 680, "b": 710})
    assert _cross_lines([ilp_a, slow_b], ["a", "b"])[3].endswith("the own policy is NOT the fastest")
    assert _method_lines([ilp_a, ilp_b]) == [] and _cross_lines([ilp_a, sdq_a], ["a", "b"]) == []
    w8 = _row("w8a8", "uniform", 0.89, {"a": 2200, "b": 2100}, None, None)       # budgets 660 and 630
    fit = _cross_lines([w8, ilp_a, ilp_b], ["a", "b"])
    assert fit[2].endswith("budget 660: ilp-b-0.3 +3.0% over it: the own policy is the most accurate that fits")
    assert fit[3].endswith("budget 630: ilp-a-0.3 +11.1% over it: the own policy is the most accurate that fits")
    cheap_b = dict(ilp_b, integer=0.9, cycles={"a": 640, "b": 620})
    assert _cross_lines([w8, ilp_a, cheap_b], ["a", "b"])[2].endswith(
        "; budget 660: ilp-b-0.3 fits it at 90.00% against the own 86.00%: ilp-b-0.3 is more accurate within it")


def test_policies_searched_at_one_uniform_sensitivity_are_crossed_by_target():
    """Searches bounded by a uniform policy's sensitivity pair up by that target (not with
    ratio searches), and their line gives the measured accuracies instead of a budget view."""
    from bitmill.cli.report_search import _cross_lines, _method_lines
    iso_a = dict(_row("ilpq-a-w4a4", "ilpq", 0.86, {"a": 650, "b": 700}, "a", None), target="w4a4")
    iso_b = dict(_row("ilpq-b-w4a4", "ilpq", 0.87, {"a": 680, "b": 620}, "b", None), target="w4a4")
    ratio_b = _row("ilpq-b-0.3", "ilpq", 0.85, {"a": 600, "b": 600}, "b", 0.3)
    w8 = _row("w8a8", "uniform", 0.89, {"a": 2200, "b": 2100}, None, None)
    cross = _cross_lines([w8, iso_a, iso_b, ratio_b], ["a", "b"])
    assert cross[2] == ("- ilpq at the sensitivity of W4A4, on a: its own policy 650; ilpq-b-w4a4 680 (+4.6%): "
                        "the own policy is the fastest; measured accuracy: own 86.00%, ilpq-b-w4a4 87.00%")
    assert len(cross) == 5
    assert _method_lines([iso_a, iso_b]) == []
    ilp_b = _row("ilp-b-0.3", "ilp", 0.84, {"a": 610, "b": 630}, "b", 0.3)
    assert _method_lines([ratio_b, ilp_b])[2] == (
        "- b at 0.3 x W8A8: ilpq 85.00% in 600, ilp 84.00% in 630: ilpq more accurate by 1.00 points, "
        "ilpq 4.8% faster")


def test_finished_searches_and_fine_tunes_are_reused_only_with_the_same_settings(tmp_path):
    from argparse import Namespace
    from dataclasses import asdict

    from bitmill.cli.report_search import same_search
    from bitmill.cli.search_points import Point, same_training, train_config
    from bitmill.config import AccelConfig
    args = Namespace(min_bits=2, sensitivity="fisher")
    cfg = AccelConfig.resolve("sim-4x4-k16")
    from bitmill.program_file import config_fingerprint
    now = config_fingerprint(cfg).hex()
    from bitmill.sim.latency import code_hash
    code = code_hash()
    assert same_search({"method": "ilp", "min_bits": 2, "sensitivity_estimator": "fisher", "config_fingerprint": now,
                        "code": code}, args, cfg)
    assert not same_search({"method": "ilp", "min_bits": 2, "sensitivity_estimator": "fisher",
                            "config_fingerprint": now, "code": "0" * 16}, args, cfg)    # another machine model
    assert not same_search({"method": "ilp", "min_bits": 2, "config_fingerprint": now}, args, cfg)   # Hessian traces
    assert not same_search({"method": "ilp", "min_bits": 3, "sensitivity_estimator": "fisher",
                            "config_fingerprint": now}, args, cfg)
    assert same_search({"method": "sdq", "min_bits": 2, "config_fingerprint": now}, args, cfg)
    assert not same_search({"method": "sdq", "min_bits": 2}, args, cfg)      # settings not recorded
    floored = {"method": "ilp", "min_bits": 2, "min_act_bits": 4, "sensitivity_estimator": "fisher",
               "config_fingerprint": now, "code": code}
    assert same_search(floored, args, cfg, 4) and not same_search(floored, args, cfg)
    assert not same_search({**floored, "min_act_bits": 2}, args, cfg, 4)
    assert same_search({**floored, "min_act_bits": 2}, args, cfg)
    edited = config_fingerprint(replace(cfg, act_buffer_bytes=2 * cfg.act_buffer_bytes)).hex()
    assert not same_search({"method": "sdq", "min_bits": 2, "config_fingerprint": edited}, args, cfg)
    point = Point("w4a4", "uniform", bits="w4a4")
    cfg = train_config(point, tmp_path / "fp.pt", 1, 0.01, 0, 100, None, "synthetic", "resnet8")
    finished = {"config": json.loads(json.dumps(asdict(cfg)))}
    assert same_training(finished, cfg)
    other = train_config(point, tmp_path / "fp.pt", 2, 0.01, 0, 100, None, "synthetic", "resnet8")
    assert not same_training(finished, other) and not same_training({}, cfg)


def test_cached_cycles_are_simulated_again_for_an_edited_config():
    from bitmill.cli.search_points import stale_configs
    a, b = "0a1b", "2c3d"
    known = {"code": "x", "c1": 100, "c2": 200, "fingerprints": {"c1": a, "c2": a}}
    assert stale_configs(known, {"c1": a, "c2": b}) == ["c2"]
    assert stale_configs(known, {"c1": a, "c3": a}) == ["c3"]
    assert stale_configs({"code": "x", "c1": 100}, {"c1": a}) == ["c1"]     # cached before settings were kept


def test_ilp_searches_share_the_sensitivity_of_a_sibling_search(tmp_path):
    from bitmill.cli.report_search import share_sensitivity
    (tmp_path / "ilp-a-0.3").mkdir()
    (tmp_path / "ilp-a-0.3" / "sensitivity.json").write_text('{"key": 1}')
    (tmp_path / "sdq-a-0.3").mkdir()
    share_sensitivity(tmp_path / "ilp-b-0.5")
    assert (tmp_path / "ilp-b-0.5" / "sensitivity.json").read_text() == '{"key": 1}'
    (tmp_path / "ilp-c-0.5").mkdir()
    (tmp_path / "ilp-c-0.5" / "sensitivity.json").write_text('{"key": 2}')
    share_sensitivity(tmp_path / "ilp-c-0.5")                      # its own is kept
    assert (tmp_path / "ilp-c-0.5" / "sensitivity.json").read_text() == '{"key": 2}'


@pytest.mark.slow
def test_calibrated_searches_run_after_the_uniform_fine_tunes_they_are_fitted_on(fp, tmp_path, run_cli, monkeypatch):
    from tests.cli.test_search import seed_calibration
    monkeypatch.setenv("BITMILL_CACHE", str(tmp_path / "cache"))
    common = ("report", "search", "--init", fp, "--model", "resnet8", "--configs", "sim-4x4-k16", "--qat-epochs",
              "1", "--train-subset", "32", "--test-subset", "16", "--dataset", "synthetic", "--calib-images", "16",
              "--samples", "1", "--min-bits", "6", "--runs", tmp_path / "runs", "--out", tmp_path / "rep",
              "--train-only")
    args = (*common, "--search", "ilpq:sim-4x4-k16:w7a7", "--uniform", "w6a6,w8a6,w6a8")
    status, out, err = run_cli(*common, "--methods", "", "--uniform", "w6a6,w8a6,w6a8")
    assert status == 0, err
    search = tmp_path / "runs" / "search" / "ilpq-sim-4x4-k16-w7a7"
    seed_calibration(search, fp, tmp_path / "runs" / "qat", {"6,6": 0.05, "6,8": 0.02, "8,6": 0.04}, 2048)
    status, out, err = run_cli(*args)
    assert status == 0, err
    doc = json.loads((search / "search.json").read_text())
    assert set(doc["calibration"]["runs"]) == {"w6a6", "w8a6", "w6a8"} and doc["target"] == "w7a7"
    assert (tmp_path / "runs" / "qat" / "ilpq-sim-4x4-k16-w7a7" / "metrics.json").exists()
    stamp = (search / "search.json").stat().st_mtime_ns
    status, out, err = run_cli(*args)
    assert status == 0 and (search / "search.json").stat().st_mtime_ns == stamp, err    # same runs: reused
    status, out, err = run_cli(*args[:-1], "w6a6,w8a6,w6a8,w7a6")        # one more uniform run: refitted
    assert "used other settings; searching again" in out


def test_repeated_points_give_the_spread_of_their_accuracy(fp, tmp_path, run_cli):
    args = ("report", "search", "--init", fp, "--model", "resnet8", "--configs", "sim-4x4-k16", "--methods", "",
            "--uniform", "w8a8", "--qat-epochs", "1", "--train-subset", "32", "--test-subset", "16",
            "--dataset", "synthetic", "--runs", tmp_path / "runs", "--out", tmp_path / "rep")
    status, _, err = run_cli(*args, "--repeat", "w8a8", "--repeats", "2")
    assert status == 0, err
    doc = json.loads((tmp_path / "rep" / "results.json").read_text())
    (again,) = doc["repeats"]
    assert again["name"] == "w8a8-seed1" and again["repeat_of"] == "w8a8" and again["seed"] == 1
    assert json.loads((tmp_path / "runs" / "qat" / "w8a8-seed1" / "metrics.json").read_text())["config"]["seed"] == 1
    assert not (tmp_path / "runs" / "qat" / "w8a8-seed1" / "cycles.json").exists()      # the policy's cycles
    readme = (tmp_path / "rep" / "README.md").read_text()
    from bitmill.models.train import device_name
    row = next(r for r in doc["rows"] if r["name"] == "w8a8")
    assert row["trained_on"] == device_name()            # e.g. "cpu: <model>, 2 threads"
    assert "- w8a8: " in readme and f"Where the fine-tunes ran: {device_name()}: 1 (w8a8)." in readme
    status, _, err = run_cli(*args, "--repeat", "w4a4")
    assert_one_error_line(status, err, "--repeat w4a4: not a point of this report (its uniform policies and "
                                       "searches: w8a8)")
    status, _, err = run_cli(*args, "--repeat", "w8a8", "--repeats", "1")
    assert status == 2 and "must be 2 or more" in err


def test_noise_lines_give_every_seed_the_mean_and_the_deviation():
    from bitmill.cli.report_search import _noise_lines
    done = [_row("w4a4", "uniform", 0.9314, {"a": 1}), _row("w2a4", "uniform", 0.9319, {"a": 1})]
    repeats = [{"name": "w4a4-seed1", "repeat_of": "w4a4", "seed": 1, "integer": 0.9300},
               {"name": "w4a4-seed2", "repeat_of": "w4a4", "seed": 2, "integer": 0.9322},
               {"name": "w2a4-seed1", "repeat_of": "w2a4", "pending": True}]
    lines = _noise_lines(done, repeats, 0)
    assert lines[2] == ("- w4a4: 93.14% (seed 0), 93.00% (seed 1), 93.22% (seed 2); mean 93.12%, standard "
                        "deviation 0.11 point, range 0.22 point")
    assert len(lines) == 4                      # w2a4 has no finished second seed
    assert _noise_lines(done, [], 0) == []
