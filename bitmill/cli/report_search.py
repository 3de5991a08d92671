"""``bitmill report search``: searched bit-width policies against uniform ones, every point
measured. Generated, never hand-edited.

Per configuration, method (ilp, ilpq, sdq) and budget ratio a `bitmill search` (reused when its
folder holds a finished one); ``ilpq`` is the ILP with its sensitivity calibrated on the
report's own uniform fine-tunes (`bitmill.models.calibration`; those are trained first), and a
search may name a uniform policy instead of a ratio (``ilpq:ulx3s-85f:w4a4``: the fastest policy
on that configuration at most as sensitive as uniform W4A4; the cross table of such searches
compares targets at equal predicted accuracy). ``--repeat NAME`` fine-tunes that point again with
``--repeats - 1`` other seeds and reports the spread of its integer accuracy: the noise against
which the report's differences of a tenth of a point are to be read. Every policy, searched or uniform, is fine-tuned from the FP
checkpoint with the same QAT budget (LSQ; SDQ policies with phase 2's KD and EBR), exported,
its integer-path accuracy measured by the golden model on the test set, and its cycles
simulated (cycle-accurate, checked bit for bit against golden) on every configuration. The
report: README.md (tables, the cross table, the latency table's error against the
simulator), ``pareto.png`` (integer accuracy against simulated cycles), one bar chart of
per-layer bits per searched policy, ``results.json``. Finished runs are reused, killed ones
resumed (`bitmill train`); ``--finished-only`` trains nothing, ``--train-only`` measures nothing
(fine-tunes on a GPU machine, measured by the same command elsewhere). The fine-tunes are independent
jobs: with ``--ray ADDRESS`` they run as Ray tasks, one per worker (a GPU each where the
cluster has them), with the same results as here for the same ``--threads``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from bitmill import provenance
from bitmill.cli.args import non_negative_int, positive_int
from bitmill.cli.fanout import run_jobs
from bitmill.cli.search_points import FineTune, Point, measure, rtl_cycles, train_config
from bitmill.config import AccelConfig
from bitmill.errors import BitmillError
from bitmill.fileio import atomic_write, atomic_write_text
from bitmill.precision import parse_bits
from bitmill.program_file import config_fingerprint

METHODS = ("ilp", "ilpq", "sdq")
UNIFORM = ("w2a2", "w3a3", "w4a4", "w5a5", "w6a6", "w8a8", "w2a4", "w4a2", "w3a4", "w4a3")


@dataclass(frozen=True)
class SearchEntry:
    """One search of the report: method, configuration, budget ratio and, where given, the
    smallest activation width searched (`bitmill search --min-act-bits`)."""

    method: str
    config: AccelConfig
    ratio: float | None
    min_act_bits: int | None = None
    target: str | None = None          # a uniform policy (``w4a4``) in place of a ratio

    @property
    def name(self) -> str:
        """The search's folder and point name, e.g. ``ilp-sim-4x4-k16-0.18-a4``."""
        tail = f"-a{self.min_act_bits}" if self.min_act_bits is not None else ""
        goal = self.target if self.target is not None else f"{self.ratio:g}"
        return f"{self.method}-{self.config.name}-{goal}{tail}"


def search_plan(args, cfgs) -> list[SearchEntry]:
    """Every search: ``--search`` entries, else every method on every config at every ratio."""
    if not args.search:
        return [SearchEntry(m, c, r) for c in cfgs for m in args.methods for r in args.budget_ratios]
    by_name, plan = {c.name: c for c in cfgs}, []
    for entry in args.search:
        parts = entry.split(":")
        ok = len(parts) in (3, 4) and parts[0] in METHODS and parts[1] in by_name
        floor, target, ratio = None, None, 0.0
        try:
            if ok and parts[0] != "sdq" and _uniform_name(parts[2]):
                target, ratio = parts[2].lower(), None
            elif ok:
                ratio = float(parts[2])
            if ok and len(parts) == 4:
                floor = int(parts[3][1:]) if parts[3].startswith("a") else 0
                ok = 1 <= floor <= 8
        except ValueError:
            ok = False
        if not ok or (ratio is not None and not 0 < ratio <= 1):
            raise BitmillError(f"--search {entry!r}: expected METHOD:CONFIG:RATIO[:aN] with METHOD ilp, ilpq or sdq, "
                               f"CONFIG one of --configs ({', '.join(by_name)}), RATIO in (0, 1] (or, for ilp and "
                               "ilpq, a uniform policy such as w4a4) and N the smallest activation width (1..8), "
                               "e.g. ilp:ulx3s-85f:0.35, ilp:ulx3s-85f:0.25:a4 or ilpq:ulx3s-85f:w4a4")
        plan.append(SearchEntry(parts[0], by_name[parts[1]], ratio, floor, target))
    return plan


def _uniform_name(text: str) -> bool:
    import re
    return re.fullmatch(r"[wW][1-8][aA][1-8]", text) is not None


def _searches(args, cfgs) -> list[Point]:
    points, calibration_runs = [], None
    for entry in search_plan(args, cfgs):
        if entry.method == "ilpq" and calibration_runs is None:     # hashed once for every search
            from bitmill.models.calibration import identify, uniform_runs
            calibration_runs = identify(uniform_runs(Path(args.runs) / "qat", args.seed))
        method, cfg, ratio = entry.method, entry.config, entry.ratio
        out = Path(args.runs) / "search" / entry.name
        done = out / "search.json"
        if done.exists() and not same_search(json.loads(done.read_text()), args, cfg, entry.min_act_bits,
                                             entry, calibration_runs):
            if args.finished_only:
                continue
            print(f"== search {out.name}: the finished search used other settings; searching again", flush=True)
            done.unlink()
        if not done.exists():
            if args.finished_only:
                continue
            goal = ["--as-accurate-as", entry.target] if entry.target else ["--budget-ratio", f"{ratio:g}"]
            cmd = [sys.executable, "-m", "bitmill", "search", "--model", args.model, "--method",
                   "ilp" if method == "ilpq" else method, "--config", cfg.name, *goal, "--init",
                   args.init, "-o", str(out), "--resume", "--dataset", args.dataset,
                   "--seed", str(args.seed), "--calib-images", str(args.calib_images),
                   "--samples", str(args.samples), "--min-bits", str(args.min_bits),
                   "--sensitivity", args.sensitivity]
            if entry.min_act_bits is not None:
                cmd += ["--min-act-bits", str(entry.min_act_bits)]
            if method == "sdq":
                cmd += ["--epochs", str(args.sdq_epochs), "--train-images", str(args.sdq_images)]
            if method == "ilpq":
                cmd += ["--calibration", str(Path(args.runs) / "qat")]
            if method != "sdq":
                share_sensitivity(out)
            print(f"== search {out.name}", flush=True)
            env = {**os.environ, "BITMILL_THREADS": str(args.threads)}
            if subprocess.run(cmd, env=env).returncode != 0:
                raise BitmillError(f"the search {out.name} failed (see its output above)")
        points.append(Point(out.name, method, policy=out / "policy.yaml", config=cfg.name, ratio=ratio,
                            min_act_bits=entry.min_act_bits, target=entry.target))
    return points


def share_sensitivity(out: Path) -> None:
    """Seed an ILP search folder without ``sensitivity.json`` (or ``calibration.json``) with a
    sibling ILP search's: the traces depend on the checkpoint and the calibration settings, the
    uniform runs' losses on the runs, neither on the configuration or budget, and ``bitmill
    search`` reuses them only where their recorded settings match (it computes them again
    otherwise)."""
    for name in ("sensitivity.json", "calibration.json"):
        if (out / name).exists():
            continue
        for other in sorted(out.parent.glob(f"ilp*-*/{name}")):
            if other.parent != out:
                out.mkdir(parents=True, exist_ok=True)
                atomic_write_text(out / name, other.read_text())
                break


def same_search(doc: dict, args, cfg: AccelConfig, min_act_bits: int | None = None,
                entry: SearchEntry | None = None, calibration_runs: dict[str, str] | None = None) -> bool:
    """Whether a finished search (its ``search.json``) was made with the report's settings: the
    configuration's settings as they are now (a search made before they were recorded counts
    as another), the smallest widths (activations: ``min_act_bits``, default the smallest
    width; searches before the choice existed used the smallest width) and, for the ILP, the
    sensitivity estimator (searches before the choice existed used Hessian traces), for ``ilpq``
    the uniform runs its calibration was fitted on (``calibration_runs``, the runs' content
    by `bitmill.models.calibration.identify`), the uniform target of a
    ``--as-accurate-as`` search, and the machine model's code (`bitmill.sim.latency.code_hash`: an ILP search is seconds once its
    sensitivity is there; an SDQ phase 1 is kept across timing changes, and its policy is
    measured under the current model like every other)."""
    if doc.get("min_bits") != args.min_bits:
        return False
    if doc.get("min_act_bits", doc["min_bits"]) != (args.min_bits if min_act_bits is None else min_act_bits):
        return False
    if doc.get("config_fingerprint") != config_fingerprint(cfg).hex():
        return False
    if doc["method"] != "ilp":
        return True
    from bitmill.sim.latency import code_hash
    if entry is not None and entry.method == "ilpq":
        if calibration_runs is None or (doc.get("calibration") or {}).get("runs") != calibration_runs:
            return False
    if entry is not None and doc.get("target") != entry.target:
        return False
    return doc.get("sensitivity_estimator", "hessian") == args.sensitivity and doc.get("code") == code_hash()


def _rows(args, cfgs, points, train_only: bool = False) -> list[dict]:
    init = Path(args.init)
    fp_cfg = json.loads((init.parent / "metrics.json").read_text()) \
        if (init.parent / "metrics.json").exists() else None
    jobs, pending = [], []
    for p in points:
        run_dir = Path(args.runs) / "qat" / p.name
        if args.finished_only and not (run_dir / "metrics.json").exists():
            pending.append({"name": p.name, "kind": p.kind, "pending": True})
            continue
        cfg = train_config(p, init, args.qat_epochs, args.qat_lr, args.seed, args.train_subset,
                           args.test_subset, args.dataset, args.model)
        jobs.append(FineTune(p, cfg, run_dir.resolve(), init.resolve(), tuple(c.name for c in cfgs),
                             args.threads, measured=not (args.train_only or train_only)))
    rows = run_jobs(measure, jobs, ray=args.ray, cpus=args.threads, label=lambda j: j.point.name)
    if args.train_only or train_only:
        return rows
    tables = {}
    for job, row in zip(jobs, rows):
        if job.point.policy is not None:
            doc = json.loads((job.point.policy.parent / "search.json").read_text())
            row.update(policy=doc["policy"], predicted=_predicted(args.model, job.point.config, doc["policy"], tables),
                       search_seconds=doc["seconds"], budget_cycles=doc["budget_cycles"])
    rows += pending
    if fp_cfg is not None:
        rows.insert(0, {"name": "fp", "kind": "fp", "fake_quant": fp_cfg.get("test_accuracy")})
    return rows


def _repeat_rows(args, cfgs, points: list[Point]) -> list[dict]:
    """The ``--repeat`` points fine-tuned again with seeds ``seed + 1 .. seed + repeats - 1``
    (folders ``RUNS/qat/NAME-seedS``), their integer accuracy measured (their cycles are the
    point's: the same policy); finished ones reused."""
    by_name, jobs, of, pending = {p.name: p for p in points}, [], [], []
    init = Path(args.init)
    for name in args.repeat or ():
        if name not in by_name:                     # a search skipped by --finished-only
            continue
        for k in range(1, args.repeats):
            seed = args.seed + k
            point = replace(by_name[name], name=f"{name}-seed{seed}")
            run_dir = Path(args.runs) / "qat" / point.name
            if args.finished_only and not (run_dir / "metrics.json").exists():
                pending.append((point.name, name))
                continue
            cfg = train_config(point, init, args.qat_epochs, args.qat_lr, seed, args.train_subset,
                               args.test_subset, args.dataset, args.model)
            jobs.append(FineTune(point, cfg, run_dir.resolve(), init.resolve(), (), args.threads,
                                 measured=not args.train_only))
            of.append(name)
    rows = run_jobs(measure, jobs, ray=args.ray, cpus=args.threads, label=lambda j: j.point.name)
    return [{"name": j.point.name, "repeat_of": name, "seed": j.train.seed, "integer": r.get("integer")}
            for j, name, r in zip(jobs, of, rows)] + \
        [{"name": n, "repeat_of": name, "pending": True} for n, name in pending]


def _device_lines(done: list[dict]) -> list[str]:
    """Where the fine-tunes ran (recorded by `bitmill train` per epoch since it was added)."""
    where: dict[str, list[str]] = {}
    for r in done:
        where.setdefault(r.get("trained_on") or "not recorded (fine-tuned before bitmill recorded it)",
                         []).append(r["name"])
    if not where:
        return []
    return ["Where the fine-tunes ran: " + "; ".join(
        f"{place}: {len(names)} ({', '.join(names)})" for place, names in where.items()) + ".", ""]


def _noise_lines(done: list[dict], repeats: list[dict], seed: int) -> list[str]:
    """Per repeated point: its integer accuracy under every seed, the mean and the sample
    standard deviation."""
    rows = {r["name"]: r for r in done}
    lines = []
    for name in dict.fromkeys(r["repeat_of"] for r in repeats):
        runs = [(seed, rows[name]["integer"])] if name in rows else []
        runs += [(r["seed"], r["integer"]) for r in repeats if r["repeat_of"] == name and not r.get("pending")]
        if len(runs) < 2:
            continue
        acc = np.array([a for _, a in runs]) * 100
        lines.append(f"- {name}: " + ", ".join(f"{a:.2f}% (seed {s})" for (s, _), a in zip(runs, acc))
                     + f"; mean {acc.mean():.2f}%, standard deviation {acc.std(ddof=1):.2f} point, "
                     f"range {acc.max() - acc.min():.2f} point")
    if not lines:
        return []
    return ["Fine-tune noise (the same policy fine-tuned again with other seeds, the same budget; integer "
            "accuracy on the same test images): differences between policies smaller than this spread are "
            "not evidence either way.", "", *lines, ""]


def _predicted(model: str, config: str, policy: dict[str, str], tables: dict) -> int:
    """The whole network's cycles under ``policy`` by the latency table of the current machine
    model (not the one the search used, which may predate a timing change), so the table's
    error against the simulator is always measured against the same model."""
    from bitmill.models.bits import parse_pair
    from bitmill.sim import latency
    if config not in tables:
        tables[config] = latency.build_table(model, AccelConfig.resolve(config))
    return tables[config].predict({l: parse_pair(p) for l, p in policy.items()})


def _pct(v) -> str:
    return "-" if v is None else f"{100 * v:.2f}"


def _images(n, everything: str) -> str:
    return everything if n is None else f"{n:,}"


def closest_to_goal(done: list[dict], cfg: str) -> dict | None:
    """The searched policy closest to the first goal on ``cfg`` (the most accurate, less 10
    points per unit of cycles above 0.67 x W4A4's; the most accurate without W4A4); None
    without searched policies."""
    searched = [r for r in done if r.get("policy")]
    w4 = next((r for r in done if r["name"] == "w4a4"), None)
    if not searched:
        return None
    over = (lambda r: max(0.0, r["cycles"][cfg] / w4["cycles"][cfg] - 0.67)) if w4 else (lambda r: 0.0)
    return max(searched, key=lambda r: r["integer"] - 10 * over(r))


def _rtl_lines(done: list[dict]) -> list[str]:
    lines = []
    for r in done:
        rtl = r.get("rtl")
        if rtl:
            sim = r["cycles"][rtl["config"]]
            built = (f"Verilator build {rtl['build_seconds']:g} s" if rtl["build_seconds"] > 0
                     else "the Verilator model of an earlier build, unchanged, reused")
            lines += [f"On the RTL: {r['name']} (the searched policy closest to the first goal) ran on "
                      f"the Verilated RTL of the whole accelerator of {rtl['config']} (`bitmill rtlsim`): "
                      f"{rtl['cycles']:,} cycles, the simulator's {sim:,}; every instruction started and "
                      "ended in the simulator's cycle and every tensor of the final memory image equals "
                      f"golden ({rtl['cycles_per_s']:,} cycles/s, {rtl['run_seconds']:g} s; {built}).", ""]
    return lines


def _goal_lines(done: list[dict], fp: dict | None, cfg: str) -> list[str]:
    """The two goals on the first configuration: a searched policy within 0.1 point of W4A4's
    accuracy in at most 0.67 x its cycles; one within 0.5 point of FP in at most 0.25 x W8A8's."""
    rows = {r["name"]: r for r in done}
    searched = [r for r in done if r.get("policy")]
    if not searched or "w4a4" not in rows or "w8a8" not in rows:
        return []
    w4, w8 = rows["w4a4"], rows["w8a8"]
    lines = [f"Goals on {cfg} (measured; cycles of {cfg}):", ""]
    ok = [r for r in searched if r["integer"] >= w4["integer"] - 0.001 and r["cycles"][cfg] <= 0.67 * w4["cycles"][cfg]]
    best = closest_to_goal(done, cfg)
    lines.append(f"- accuracy >= W4A4's ({_pct(w4['integer'])}%) - 0.1 in <= 0.67 x its cycles "
                 f"({0.67 * w4['cycles'][cfg]:,.0f}): " + ("met by " + ", ".join(r["name"] for r in ok) if ok else
                 f"not met; closest {best['name']}: {_pct(best['integer'])}% in "
                 f"{best['cycles'][cfg] / w4['cycles'][cfg]:.3f} x W4A4's cycles"))
    if fp is not None and fp.get("fake_quant") is not None:
        ok = [r for r in searched if r["integer"] >= fp["fake_quant"] - 0.005
              and r["cycles"][cfg] <= 0.25 * w8["cycles"][cfg]]
        within = [r for r in done if r["cycles"][cfg] <= 0.25 * w8["cycles"][cfg]]
        if ok:
            verdict = "met by " + ", ".join(r["name"] for r in ok)
        elif within:
            verdict = "not met; within 0.25 x W8A8's cycles the most accurate " + "; ".join(
                f"{kind} policy is {best['name']}: {_pct(best['integer'])}% "
                f"({100 * (fp['fake_quant'] - best['integer']):.2f} points below FP) in "
                f"{best['cycles'][cfg] / w8['cycles'][cfg]:.3f} x W8A8's cycles"
                for kind, group in (("searched", [r for r in within if r.get("policy")]),
                                    ("uniform", [r for r in within if not r.get("policy")])) if group
                for best in [max(group, key=lambda r: r["integer"])])
        else:
            floor = min(r["cycles"][cfg] for r in done) / w8["cycles"][cfg]
            verdict = f"not met; the fastest measured policy takes {floor:.3f} x W8A8's cycles"
        lines.append(f"- within 0.5 point of FP ({_pct(fp['fake_quant'])}%) in <= 0.25 x W8A8's cycles: "
                     + verdict)
    return lines + [""]


def _dominators(r: dict, uniform: list[dict], cfg: str) -> list[dict]:
    """Uniform policies at least as fast and as accurate as ``r`` on ``cfg``, better in one."""
    return [u for u in uniform if u["cycles"][cfg] <= r["cycles"][cfg] and u["integer"] >= r["integer"]
            and (u["cycles"][cfg] < r["cycles"][cfg] or u["integer"] > r["integer"])]


def _frontier_lines(done: list[dict], names: list[str]) -> list[str]:
    """Per configuration, the searched policies that a uniform one dominates (faster and at
    least as accurate), those searched for that configuration apart from those searched for
    another one (which its budget did not constrain)."""
    searched = [r for r in done if r.get("policy")]
    uniform = [r for r in done if r["kind"] == "uniform"]
    if not searched or not uniform:
        return []
    lines = ["Uniform frontier (a uniform policy at least as fast and as accurate dominates a searched one):", ""]
    for cfg in names:
        parts = []
        for label, group in (("searched for it", [r for r in searched if r.get("config") == cfg]),
                             ("searched for another configuration", [r for r in searched if r.get("config") != cfg])):
            if not group:
                continue
            beaten = []
            for r in group:
                by = _dominators(r, uniform, cfg)
                if by:
                    beaten.append(f"{r['name']} ({_pct(r['integer'])}%, {r['cycles'][cfg]:,}) by " + ", ".join(
                        f"{u['name']} ({_pct(u['integer'])}%, {u['cycles'][cfg]:,})" for u in by))
            parts.append(f"{label}: " + ("; ".join(beaten) if beaten else
                                         f"none of {len(group)} dominated ({len(uniform)} uniform)"))
        lines.append(f"- {cfg}: " + "; ".join(parts))
    tally = []
    for kind in dict.fromkeys(r["kind"] for r in searched):
        own = [r for r in searched if r["kind"] == kind and r.get("config") in names]
        beaten = [r for r in own if _dominators(r, uniform, r["config"])]
        if own:
            tally.append(f"{kind} {len(beaten)} of {len(own)}")
    lines += ["", "Dominated on the configuration each was searched for, per method: " + ", ".join(tally) + "."]
    return lines + [""]


def _floor_text(floor: int | None) -> str:
    return "" if floor is None else f" with activations of {floor} bits or more"


def _method_lines(done: list[dict]) -> list[str]:
    """The methods against each other where two searched the same configuration and budget
    ratio (ilp: FP sensitivity; ilpq: calibrated on the uniform fine-tunes; sdq)."""
    by_budget: dict[tuple, dict] = {}
    for r in done:
        if r.get("policy") and r.get("ratio"):
            by_budget.setdefault((r["config"], r["ratio"], r.get("min_act_bits")), {})[r["kind"]] = r
    found = [(k, v[x], v[y]) for k, v in by_budget.items()
             for x, y in (("ilp", "sdq"), ("ilpq", "ilp"), ("ilpq", "sdq")) if x in v and y in v]
    if not found:
        return []
    lines = ["The search methods against each other at the same budget (measured accuracy; cycles on the "
             "searched config; ilp: FP sensitivity, ilpq: calibrated on the uniform fine-tunes):", ""]
    for (cfg, ratio, floor), one, two in found:
        acc = max((one, two), key=lambda r: r["integer"])
        fast = min((one, two), key=lambda r: r["cycles"][cfg])
        slow = two if fast is one else one
        lines.append(f"- {cfg} at {ratio:g} x W8A8{_floor_text(floor)}: {one['kind']} {_pct(one['integer'])}% in "
                     f"{one['cycles'][cfg]:,}, {two['kind']} {_pct(two['integer'])}% in {two['cycles'][cfg]:,}: "
                     + (f"{acc['kind']} more accurate by {100 * abs(one['integer'] - two['integer']):.2f} points"
                        if one["integer"] != two["integer"] else "equally accurate")
                     + f", {fast['kind']} {100 * (1 - fast['cycles'][cfg] / slow['cycles'][cfg]):.1f}% faster")
    return lines + [""]


def _cross_lines(done: list[dict], names: list[str]) -> list[str]:
    """Hardware awareness: policies searched with the same method and budget ratio for two
    configurations, each run on both; each target's own policy should be the faster there.
    With uniform W8A8 measured, also the budget view: which policies fit the target's budget
    (the ratio of its W8A8 cycles) and whether the own policy is the most accurate of them."""
    found: dict[tuple, dict] = {}
    for r in done:
        if r.get("policy") and r["config"] in names:
            found.setdefault((r["kind"], r.get("ratio"), r.get("target"), r.get("min_act_bits")), {})[r["config"]] = r
    pairs = [(k, v) for k, v in found.items() if len(v) >= 2]
    if not pairs:
        return []
    w8 = next((r for r in done if r["name"] == "w8a8"), None)
    lines = ["Cross check (the same method and budget ratio, or the same uniform policy's sensitivity as the "
             "bound, searched for each configuration; cycles of every such policy on every configuration):", ""]
    for (kind, ratio, target, floor), by_cfg in pairs:
        for cfg in by_cfg:
            own = by_cfg[cfg]
            others = [r for c, r in by_cfg.items() if c != cfg]
            verdict = all(own["cycles"][cfg] < o["cycles"][cfg] for o in others)
            goal = f"{ratio:g} x W8A8" if target is None else f"the sensitivity of {target.upper()}"
            line = (f"- {kind} at {goal}{_floor_text(floor)}, on {cfg}: its own policy {own['cycles'][cfg]:,}; "
                    + ", ".join(f"{o['name']} {o['cycles'][cfg]:,} ({100 * (o['cycles'][cfg] / own['cycles'][cfg] - 1):+.1f}%)"
                                for o in others)
                    + (": the own policy is the fastest" if verdict else ": the own policy is NOT the fastest"))
            if target is not None:
                line += ("; measured accuracy: own " + _pct(own["integer"]) + "%, "
                         + ", ".join(f"{o['name']} {_pct(o['integer'])}%" for o in others))
            elif w8 is not None:
                budget = ratio * w8["cycles"][cfg]
                fit = [r for r in (own, *others) if r["cycles"][cfg] <= budget]
                over = [o for o in others if o["cycles"][cfg] > budget]
                line += (f"; budget {budget:,.0f}: " + ", ".join(
                    f"{o['name']} {100 * (o['cycles'][cfg] / budget - 1):+.1f}% over it" for o in over))
                fits = [o for o in others if o not in over]
                if fits:
                    line += ("; " if over else "") + ", ".join(
                        f"{o['name']} fits it at {_pct(o['integer'])}% against the own {_pct(own['integer'])}%"
                        for o in fits)
                best = max(fit, key=lambda r: r["integer"]) if fit else None
                line += (": the own policy is the most accurate that fits" if best is own
                         else f": {best['name']} is more accurate within it" if best else "")
            lines.append(line)
    return lines + [""]


def markdown(rows: list[dict], cfgs, args, repeats: list[dict] = ()) -> str:
    names = [c.name for c in cfgs]
    done = [r for r in rows if not r.get("pending") and r["kind"] != "fp"]
    fp = next((r for r in rows if r["kind"] == "fp"), None)
    lines = [f"# Bit-width search: {args.model} on {args.dataset}, {', '.join(names)}", "",
             "Every point measured: QAT fine-tune (LSQ, the same budget for every policy: "
             f"{args.qat_epochs} epoch(s) of {_images(args.train_subset, 'all')} training images at lr "
             f"{args.qat_lr} from the FP checkpoint; SDQ policies with KD "
             "and EBR), integer-path accuracy of the exported network (golden model), cycles from the "
             "cycle-accurate simulator of the exported network on each configuration (bit-exact). "
             "Searched policies keep the first and last layer and the average pool's input at 8 bits; "
             "uniform ones keep the first and last layer at 8 bits. Accuracy on "
             f"{_images(args.test_subset, 'all 10,000')} test images.", ""]
    if fp is not None:
        lines += [f"Full precision: {_pct(fp.get('fake_quant'))}% (the checkpoint's own test figure).", ""]
    lines += _device_lines(done)
    lines += _goal_lines(done, fp, names[0]) if names else []
    lines += _rtl_lines(done)
    lines += _noise_lines(done, list(repeats), args.seed)
    lines += _frontier_lines(done, names) + _method_lines(done) + _cross_lines(done, names)
    lines += ["| policy | kind | budget | integer acc % | " + " | ".join(f"cycles {n}" for n in names)
              + " | table predicted (own config) | error |",
              "|---|---|---|---|" + "---|" * len(names) + "---|---|"]
    for r in done:
        pred = r.get("predicted")
        own = r["cycles"].get(r.get("config")) if r.get("config") else None
        err = f"{100 * (pred / own - 1):+.2f}%" if pred and own else "-"
        budget = "-"
        if r.get("target"):
            floor = f", A >= {r['min_act_bits']}" if r.get("min_act_bits") is not None else ""
            budget = f"fastest on {r['config']} as sensitive as {r['target'].upper()}{floor}"
        elif r.get("ratio"):
            over = " (policy over budget)" if pred and pred > r["budget_cycles"] else ""
            floor = f", A >= {r['min_act_bits']}" if r.get("min_act_bits") is not None else ""
            budget = f"{r['ratio']:g} x W8A8 on {r['config']} = {r['budget_cycles']:,.0f}{floor}{over}"
        cycles = " | ".join(f"{r['cycles'][n]:,}" for n in names)
        predicted = f"{pred:,}" if pred else "-"
        lines.append(f"| {r['name']} | {r['kind']} | {budget} | {_pct(r.get('integer'))} | {cycles} "
                     f"| {predicted} | {err} |")
    pending = [r["name"] for r in rows if r.get("pending")]
    if pending:
        lines += ["", f"Pending (not trained yet): {', '.join(pending)}."]
    searched = [r for r in done if r.get("policy")]
    if searched:
        lines += ["", "Search wall time per policy (latency table, sensitivity + ILP, or SDQ phase 1), next "
                      "to the QAT fine-tune every policy gets:", ""]
        for r in searched:
            secs = ", ".join(f"{k.replace('_', ' ')} {v:.0f} s" for k, v in r["search_seconds"].items())
            lines.append(f"- {r['name']}: {secs}; fine-tune {r['train_seconds']:.0f} s")
        lines += ["", "Per-layer bits of the searched policies: `bits-<policy>.png`."]
    lines += ["", "![integer accuracy against simulated cycles](pareto.png)", "",
              f"Generated by `bitmill report search` at {provenance.git_revision()}, "
              f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, on {provenance.cpu_model()}."]
    return "\n".join(lines) + "\n"


def plots(rows: list[dict], cfgs, out: Path, weights: dict[str, int]) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    done = [r for r in rows if not r.get("pending") and r["kind"] != "fp"]
    fp = next((r for r in rows if r["kind"] == "fp"), None)
    fig, axes = plt.subplots(1, len(cfgs), figsize=(6 * len(cfgs), 4.5), squeeze=False)
    for ax, c in zip(axes[0], cfgs):
        for kind, marker in (("uniform", "o"), ("ilp", "s"), ("ilpq", "D"), ("sdq", "^")):
            pts = [(r["cycles"][c.name], 100 * r["integer"]) for r in done if r["kind"] == kind]
            if pts:
                ax.scatter(*zip(*pts), marker=marker, label=kind)
        for r in done:
            if r["kind"] == "uniform":
                ax.annotate(r["bits"].upper(), (r["cycles"][c.name], 100 * r["integer"]), fontsize=7)
        if fp is not None and fp.get("fake_quant") is not None:
            ax.axhline(100 * fp["fake_quant"], color="k", linestyle="--", label="FP")
        ax.set_xlabel(f"simulated cycles on {c.name}")
        ax.set_ylabel("integer-path accuracy %")
        ax.legend()
    fig.tight_layout()
    atomic_write(out / "pareto.png", lambda tmp: fig.savefig(tmp, format="png", dpi=110))
    plt.close(fig)
    for r in done:
        if not r.get("policy"):
            continue
        layers = list(r["policy"])
        w, a = zip(*(parse_bits(r["policy"][l]) for l in layers))
        fig, ax = plt.subplots(figsize=(max(6, 0.45 * len(layers)), 4))
        x = np.arange(len(layers))
        ax.bar(x - 0.2, w, 0.4, label="weight bits")
        ax.bar(x + 0.2, a, 0.4, label="activation bits")
        ax.set_xticks(x, [f"{l}\n{weights.get(l, 0):,} w" for l in layers], rotation=90, fontsize=7)
        ax.set_ylabel("bits")
        ax.set_title(r["name"])
        ax.legend()
        fig.tight_layout()
        atomic_write(out / f"bits-{r['name']}.png", lambda tmp, f=fig: f.savefig(tmp, format="png", dpi=110))
        plt.close(fig)


def default_threads() -> int:
    """Torch threads of a fine-tune when not given: $BITMILL_THREADS, else every core."""
    env = os.environ.get("BITMILL_THREADS", "")
    return int(env) if env.isdigit() and int(env) > 0 else (os.cpu_count() or 1)


def _run_on_rtl(rows: list[dict], cfg: str, runs: Path, build_dir: Path) -> None:
    """Run the searched policy closest to the first goal on ``cfg``'s Verilated RTL; its row
    gets ``rtl``."""
    best = closest_to_goal([r for r in rows if not r.get("pending") and r["kind"] != "fp"], cfg)
    if best is None:
        raise BitmillError("--rtl: no searched policy has been measured yet")
    print(f"== rtl {best['name']} on {cfg} (Verilator build in {build_dir / cfg}, reused when unchanged)",
          flush=True)
    best["rtl"] = rtl_cycles(runs / "qat" / best["name"], cfg, build_dir / cfg)
    print(f"   {best['rtl']['cycles']:,} cycles on the RTL = the simulator's, bit-exact", flush=True)


def cmd_report_search(args: argparse.Namespace) -> int:
    from bitmill.compiler import zoo
    from bitmill.models.bits import parse_pair
    from bitmill.sim.latency import policy_spec, searched_layers
    if args.train_only and args.finished_only:
        raise BitmillError("--train-only and --finished-only exclude each other (the first trains, the second does not)")
    cfgs = [AccelConfig.resolve(c) for c in args.configs.split(",")]
    args.methods = [m for m in args.methods.split(",") if m]
    bad = [m for m in args.methods if m not in METHODS]
    if bad:
        raise BitmillError(f"unknown method {bad[0]!r}; choose {', '.join(METHODS)}")
    args.budget_ratios = [float(r) for r in args.budget_ratios.split(",")]
    uniform = [u for u in args.uniform.split(",") if u]
    for u in uniform:
        parse_pair(u)
    plan = search_plan(args, cfgs)        # bad entries fail before any work
    known = set(uniform) | {e.name for e in plan}
    unknown = [n for n in args.repeat or () if n not in known]
    if unknown:
        raise BitmillError(f"--repeat {unknown[0]}: not a point of this report (its uniform policies and "
                           f"searches: {', '.join(sorted(known))})")
    if not Path(args.init).exists():
        raise BitmillError(f"{args.init}: no such FP checkpoint (bitmill train --quantizer fp)")
    uniform_points = [Point(u, "uniform", bits=u) for u in uniform]
    if any(e.method == "ilpq" for e in search_plan(args, cfgs)) and not args.finished_only:
        _rows(args, cfgs, uniform_points, train_only=True)     # the calibration's runs, before the searches
    points = uniform_points + _searches(args, cfgs)
    rows = _rows(args, cfgs, points)
    repeats = _repeat_rows(args, cfgs, points)
    if args.train_only:
        print(f"fine-tuned {len(rows)} policies under {args.runs}; the same command without --train-only "
              "measures them and writes the report")
        return 0
    if args.rtl:
        _run_on_rtl(rows, cfgs[0].name, Path(args.runs), Path(args.rtl_build_dir))
    graph = zoo.build(args.model, policy_spec({}))
    weights = {n.name: int(n.weight.size) for n in graph.nodes if n.name in searched_layers(graph)}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    plots(rows, cfgs, out, weights)
    atomic_write_text(out / "results.json", json.dumps({"git": provenance.git_revision(), "rows": rows,
                                                        "repeats": repeats, "configs": [c.name for c in cfgs]},
                                                       indent=1))
    atomic_write_text(out / "README.md", markdown(rows, cfgs, args, repeats))
    print(f"wrote {out / 'README.md'} and {out / 'pareto.png'}")
    return 0


def _at_least_two(text: str) -> int:
    v = positive_int(text)
    if v < 2:
        raise argparse.ArgumentTypeError(f"must be 2 or more, not {text}")
    return v


def add_parser(rsub) -> None:
    """``report search`` under ``bitmill report``."""
    r = rsub.add_parser("search", help="searched vs uniform bit-widths: accuracy and simulated cycles (reports/search)")
    r.add_argument("--init", required=True, help="the FP checkpoint every search and fine-tune starts from")
    r.add_argument("--model", default="resnet20", choices=["resnet8", "resnet20"], help="network")
    r.add_argument("--configs", default="sim-4x4-k16,ulx3s-85f,pynq-z2",
                   help="comma-separated accelerator configs; the goals are checked on the first (default: "
                        "a compute-bound array first, then the two boards, bound by activation staging)")
    r.add_argument("--methods", default="ilp,sdq", help="comma-separated search methods")
    r.add_argument("--budget-ratios", default="0.35,0.55",
                   help="budgets as fractions of uniform W8A8's cycles (every config reaches them)")
    r.add_argument("--search", action="append", metavar="METHOD:CONFIG:RATIO[:aN]",
                   help="one search (repeatable), e.g. ilp:ulx3s-85f:0.35, or ilp:ulx3s-85f:0.25:a4 with "
                        "activations of 4 bits or more, or ilpq:ulx3s-85f:w4a4 (the ILP calibrated on the "
                        "uniform fine-tunes, fastest at W4A4's sensitivity); replaces every method on every "
                        "config at every ratio")
    r.add_argument("--uniform", default=",".join(UNIFORM), help="uniform policies (first/last 8-bit)")
    r.add_argument("--repeat", action="append", metavar="NAME",
                   help="fine-tune this point (a uniform policy or a search's name) again with other seeds and "
                        "report the spread of its accuracy (repeatable)")
    r.add_argument("--repeats", type=_at_least_two, default=3, help="seeds per --repeat point, its own included")
    r.add_argument("--qat-epochs", type=positive_int, default=2, help="epochs of every fine-tune")
    r.add_argument("--qat-lr", type=float, default=0.01, help="learning rate of every fine-tune")
    r.add_argument("--sdq-epochs", type=positive_int, default=4, help="epochs of SDQ phase 1")
    r.add_argument("--sdq-images", type=positive_int, default=10000, help="training images of SDQ phase 1")
    r.add_argument("--sensitivity", default="fisher", choices=["fisher", "hessian", "loss"],
                   help="ilp: empirical Fisher (FIT) or Hutchinson Hessian traces, or measured loss increases")
    r.add_argument("--calib-images", type=positive_int, default=256, help="ilp: images for the traces")
    r.add_argument("--samples", type=positive_int, default=8, help="ilp, hessian: Hutchinson vectors per batch")
    r.add_argument("--min-bits", type=positive_int, default=2, help="smallest width searched")
    r.add_argument("--train-subset", type=positive_int, help="fine-tune on this many images (default: all)")
    r.add_argument("--test-subset", type=positive_int, help="evaluate on this many images (default: all)")
    r.add_argument("--dataset", default="fashion-mnist", choices=["fashion-mnist", "synthetic"],
                   help="training, calibration and test images")
    r.add_argument("--seed", type=non_negative_int, default=0, help="seed of every search and fine-tune")
    r.add_argument("--runs", default="runs/search-report", help="search and fine-tune folders (reused, resumable)")
    r.add_argument("--out", default="reports/search", help="report folder")
    r.add_argument("--ray", metavar="ADDRESS",
                   help="run the fine-tunes as Ray tasks: a cluster address (host:6379, ray://host:10001), "
                        "'auto' (the cluster of 'ray start') or 'local' (one started here); needs bitmill[ray]")
    r.add_argument("--threads", type=positive_int, default=default_threads(),
                   help="torch threads of every fine-tune, and the CPUs each Ray task reserves; the same "
                        "value gives the same figures locally and on Ray (default: $BITMILL_THREADS or all cores)")
    r.add_argument("--rtl", action="store_true",
                   help="also run the searched policy closest to the first goal on the Verilated RTL of "
                        "the first config (bitmill rtlsim) and report its RTL cycles")
    r.add_argument("--rtl-build-dir", default="build/rtlsim", help="where --rtl builds the Verilated model")
    r.add_argument("--finished-only", action="store_true", help="train and search nothing; list the rest as pending")
    r.add_argument("--train-only", action="store_true",
                   help="search and fine-tune, measure and report nothing (e.g. fine-tunes on a GPU machine; "
                        "the same command without it, given the runs folder, then measures them elsewhere)")
    r.set_defaults(func=cmd_report_search)
