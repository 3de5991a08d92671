"""``bitmill search``: per-layer bit-widths for a cycle budget on an accelerator configuration.

``--method ilp`` (HAWQ-V3 style): per-layer sensitivity of the full-precision checkpoint
(`bitmill.models.sensitivity`), every layer's cycles at every bit-width pair from the latency
table (`bitmill.sim.latency`, measured by the cycle-accurate simulator), one integer linear
program (`bitmill.models.ilp`, HiGHS) for the least sensitive policy within the budget. The
policy is written as a ``--bits-file`` for ``bitmill train``. ``--calibration RUNS`` weighs the
weight and activation terms of the sensitivity by factors fitted to the uniform QAT runs in RUNS
(`bitmill.models.calibration`); ``--as-accurate-as wXaY`` asks the converse question: the
fastest policy on this configuration whose sensitivity is at most that uniform policy's.

``--method sdq``: phase 1 of SDQ (`bitmill.models.sdq`) from the FP checkpoint, the expected
latency from the same table as the penalty.

Output folder: ``sensitivity.json`` (ilp, the expensive step; ``--resume`` reuses it),
``calibration.json`` (ilp with ``--calibration``: the runs' measured loss increases) or
``phase1.pt`` (sdq, written after every epoch; ``--resume`` continues it),
``policy.yaml`` and ``search.json`` (budget, predicted cycles, per-layer choice, wall times).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import yaml

from bitmill.cli.args import non_negative_int, positive_int
from bitmill.config import AccelConfig
from bitmill.errors import BitmillError
from bitmill.fileio import atomic_write_text
from bitmill.program_file import config_fingerprint

MODELS = ("resnet8", "resnet20")


def _say(msg: str) -> None:
    """Progress of the long steps, on a terminal only (one line rewritten)."""
    if sys.stderr.isatty():
        print(f"\r\033[K{msg}", end="", file=sys.stderr, flush=True)


def _out_dir(args) -> Path:
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise BitmillError(f"{out} exists and is not a folder")
    if out.exists() and any(out.iterdir()) and not (args.resume or args.force):
        raise BitmillError(f"{out} is not empty; --resume reuses its sensitivity, --force replaces it")
    out.mkdir(parents=True, exist_ok=True)
    return out


def _fp_model(args):
    from bitmill.models.train import load_model
    model, tcfg = load_model(args.init)
    if tcfg.model != args.model or tcfg.width != 16:
        raise BitmillError(f"{args.init} is a checkpoint of {tcfg.model} width {tcfg.width}; the search "
                           f"runs {args.model} width 16")
    if not tcfg.method.is_fp:
        raise BitmillError(f"{args.init} is a {tcfg.quantizer} checkpoint; the sensitivity needs a "
                           f"full-precision one (bitmill train --quantizer fp)")
    return model


def _calibration(args):
    from bitmill.models import data
    ds = data.fashion_mnist("train") if args.dataset == "fashion-mnist" else data.synthetic(args.calib_images)
    return list(data.batches(ds.subset(args.calib_images, args.seed), args.calib_batch, None))


def _sensitivity(args, model, out: Path, layers, bits):
    from bitmill.models.sensitivity import Sensitivity, sensitivity
    path = out / "sensitivity.json"
    key = {"init": str(Path(args.init).resolve()), "calib_images": args.calib_images,
           "calib_batch": args.calib_batch, "samples": args.samples, "seed": args.seed,
           "estimator": args.sensitivity,
           "dataset": args.dataset, "layers": list(layers), "bits": list(bits)}
    if args.resume and path.exists():
        saved = json.loads(path.read_text())
        if saved.get("key") == key:
            print(f"sensitivity: reused {path}")
            return Sensitivity.from_dict(saved["sensitivity"]), saved["seconds"]
        print(f"sensitivity: {path} was computed with other settings; computing again")
    t0 = time.perf_counter()
    sens = sensitivity(model, layers, _calibration(args), bits, args.samples, args.seed,
                       progress=_say, estimator=args.sensitivity)
    seconds = time.perf_counter() - t0
    atomic_write_text(path, json.dumps({"key": key, "sensitivity": sens.to_dict(), "seconds": seconds}))
    return sens, seconds


def _calibration_fit(args, out: Path, sens, layers):
    """`bitmill.models.calibration` on the uniform runs of ``--calibration``: the runs' loss
    increases are measured once and kept in ``calibration.json`` (reused while the runs, the FP
    checkpoint and the settings are the same), the factors fitted anew."""
    from bitmill.models.calibration import fit, identify, measure_increases, uniform_runs
    runs = uniform_runs(args.calibration, args.seed)
    if not runs:
        raise BitmillError(f"--calibration {args.calibration}: no finished uniform LSQ runs of seed {args.seed} in it "
                           "(folders with metrics.json and checkpoint.pt, e.g. RUNS/qat of bitmill report search)")
    key = {"init": str(Path(args.init).resolve()), "runs": identify(runs), "images": args.calib_loss_images,
           "seed": args.seed, "dataset": args.dataset}
    path = out / "calibration.json"
    t0 = time.perf_counter()
    saved = json.loads(path.read_text()) if path.exists() else {}
    if saved.get("key") == key:
        increases = {tuple(map(int, k.split(","))): v for k, v in saved["increases"].items()}
    else:
        increases = measure_increases(runs, args.init, args.calib_loss_images, args.seed, args.dataset, _say)
        atomic_write_text(path, json.dumps({"key": key, "increases": {f"{w},{a}": v for (w, a), v in increases.items()}}))
    return fit(sens, layers, increases, key["runs"], args.calib_loss_images), time.perf_counter() - t0


def _sdq(args, out: Path, table, cost, constant: float, budget: float, floor: int, act_floor: int):
    """SDQ phase 1 (`bitmill.models.sdq`): (policy, history, seconds)."""
    from bitmill.models import data
    from bitmill.models.sdq import SearchSettings, run_phase1
    ds = data.fashion_mnist("train") if args.dataset == "fashion-mnist" else data.synthetic(args.train_images)
    settings = SearchSettings(args.model, str(Path(args.init).resolve()), floor, args.epochs, args.lr,
                              args.dbp_lr, args.lam, float(budget), args.batch_size, args.seed,
                              args.train_images, args.dataset, args.decay_every, act_floor)
    policy, history, seconds = run_phase1(settings, table.searched, cost, constant,
                                          ds.subset(args.train_images, args.seed), out / "phase1.pt",
                                          args.resume, progress=_say)
    return policy, history, {"sdq_phase1": seconds}


def cmd_search(args: argparse.Namespace) -> int:
    from bitmill.models.ilp import Problem, candidate_pairs
    from bitmill.sim import latency

    cfg = AccelConfig.resolve(args.config)
    if os.environ.get("BITMILL_THREADS", "").isdigit() and int(os.environ["BITMILL_THREADS"]) > 0:
        import torch
        torch.set_num_threads(int(os.environ["BITMILL_THREADS"]))    # as bitmill train does
    act_min = args.min_bits if args.min_act_bits is None else args.min_act_bits
    lo_w, lo_a = max(cfg.weight_bits[0], args.min_bits), max(cfg.act_bits[0], act_min)
    if lo_w > cfg.weight_bits[1] or lo_a > cfg.act_bits[1] or cfg.weight_bits[1] < 8 or cfg.act_bits[1] < 8:
        raise BitmillError(f"{cfg.name} runs weights {cfg.weight_bits[0]}..{cfg.weight_bits[1]} and "
                           f"activations {cfg.act_bits[0]}..{cfg.act_bits[1]} bits; the search needs "
                           f"weights {args.min_bits}..8 and activations {act_min}..8 (--min-bits, "
                           "--min-act-bits; first and last layer stay 8-bit)")
    pairs = candidate_pairs(range(lo_w, cfg.weight_bits[1] + 1), range(lo_a, cfg.act_bits[1] + 1))
    target = None
    if args.as_accurate_as is not None:
        from bitmill.models.bits import parse_pair
        if args.method != "ilp":
            raise BitmillError("--as-accurate-as needs --method ilp (SDQ searches under a cycle budget)")
        target = parse_pair(args.as_accurate_as, "--as-accurate-as")
        if target not in pairs:
            raise BitmillError(f"--as-accurate-as {args.as_accurate_as}: W{target[0]}A{target[1]} is outside the "
                               f"searched widths (weights {lo_w}..{cfg.weight_bits[1]}, activations "
                               f"{lo_a}..{cfg.act_bits[1]})")
    if args.calibration is not None and args.method != "ilp":
        raise BitmillError("--calibration needs --method ilp (it weighs the ILP's sensitivity)")
    if args.calibration is not None and not Path(args.calibration).is_dir():
        raise BitmillError(f"--calibration {args.calibration}: no such folder of uniform QAT runs")
    model = _fp_model(args)
    out = _out_dir(args)
    t0 = time.perf_counter()
    table = latency.build_table(args.model, cfg, pairs, progress=_say)
    t_table = time.perf_counter() - t0
    reference = table.measured[(8, 8)]
    budget = None if target else args.budget if args.budget is not None else args.budget_ratio * reference
    cost, constant = table.searched_costs(pairs)
    prices = Problem(table.searched, pairs, {l: {p: 0.0 for p in pairs} for l in table.searched}, cost, table.tied)
    lo, hi = (prices.total(p) + constant for p in prices.extremes())
    if budget is not None and not lo <= budget <= hi:
        raise BitmillError(f"budget {budget:,.0f} cycles is outside what {args.model} reaches on "
                           f"{cfg.name}: {lo:,.0f} (fastest policy) to {hi:,.0f} (slowest)")
    if args.method == "ilp":
        sens, t_sens = _sensitivity(args, model, out, table.searched, range(min(lo_w, lo_a), 9))
        negative = [l for l in table.searched if min(sens.weight_trace[l], sens.act_trace[l]) < 0]
        if negative:
            print(f"warning: negative {args.sensitivity} traces in {len(negative)} of {len(table.searched)} "
                  f"layers ({', '.join(negative)}): the ILP rewards quantization error there "
                  "(--sensitivity fisher never gives negative traces)")
        cal, t_cal = _calibration_fit(args, out, sens, table.searched) if args.calibration else (None, 0.0)
        score = (lambda l, p: cal.omega(sens, l, *p)) if cal else (lambda l, p: sens.omega(l, *p))
        omega = {l: {p: score(l, p) for p in pairs} for l in table.searched}
        problem = Problem(table.searched, pairs, omega, cost, table.tied)
        t1 = time.perf_counter()
        extra = {}
        if target:
            bound = problem.total({l: target for l in table.searched}, "sensitivity")
            policy = problem.fastest(bound)
            extra = {"target": f"w{target[0]}a{target[1]}", "max_sensitivity": bound}
        else:
            policy = problem.solve(budget - constant)
        seconds = {"sensitivity": t_sens, **({"calibration": t_cal} if cal else {}),
                   "ilp": time.perf_counter() - t1}
        extra.update(sensitivity=problem.total(policy, "sensitivity"), sensitivity_estimator=args.sensitivity,
                     calibration=cal.to_dict() if cal else None)
    else:
        policy, history, seconds = _sdq(args, out, table, cost, constant, budget, lo_w, lo_a)
        extra = {"history": history}
    _say("")
    predicted = table.predict(policy)
    doc = {"model": args.model, "config": cfg.name, "method": args.method, "budget_cycles": budget,
           "reference_w8a8_cycles": reference, "predicted_cycles": predicted, **extra,
           "policy": {l: f"w{w}a{a}" for l, (w, a) in policy.items()},
           "bitops": table.bitops(policy), "weight_bytes": table.weight_bytes(policy),
           "seconds": {"latency_table": t_table, **seconds},
           "table_key": table.key, "code": latency.code_hash(), "min_bits": args.min_bits, "min_act_bits": act_min,
           "config_fingerprint": config_fingerprint(cfg).hex()}
    bits_file = {"default": "w8a8", "first_last": 8, "layers": doc["policy"]}
    atomic_write_text(out / "policy.yaml", yaml.safe_dump(bits_file, sort_keys=False))
    atomic_write_text(out / "search.json", json.dumps(doc, indent=1))
    print(f"{'layer':22s} {'bits':>5s} {'table cycles':>13s}")
    for l in table.searched:
        w, a = policy[l]
        print(f"{l:22s} W{w}A{a} {cost[l][policy[l]]:>13,.0f}")
    times = ", ".join(f"{k.replace('_', ' ')} {v:.1f} s" for k, v in doc["seconds"].items())
    goal = (f"for a budget of {budget:,.0f}" if budget is not None else
            f"as the fastest policy at most as sensitive as uniform {doc['target'].upper()}")
    if doc.get("calibration"):
        c = doc["calibration"]
        print(f"calibrated on {len(c['points'])} uniform QAT runs: weight terms x {c['alpha']:.4g}, "
              f"activation terms x {c['beta']:.4g}")
    print(f"predicted {predicted:,} cycles ({predicted / reference:.3f} of uniform W8A8's {reference:,}) "
          f"{goal}; {times}")
    print(f"policy: {out / 'policy.yaml'} (bitmill train --bits-file ...)")
    return 0


def _ratio(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        v = float("nan")
    if not 0 < v <= 10:
        raise argparse.ArgumentTypeError(f"must be a number in (0, 10], not {text!r}")
    return v


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``search``."""
    p = sub.add_parser("search", help="per-layer bit-widths for a cycle budget (hardware-aware)")
    p.add_argument("--model", choices=MODELS, default="resnet20", help="network")
    p.add_argument("--method", choices=["ilp", "sdq"], default="ilp",
                   help="ilp: Hessian-trace sensitivity + integer linear program (HAWQ-V3 style); "
                        "sdq: differentiable bit-width parameters with the expected latency (phase 1)")
    p.add_argument("--config", required=True, help="accelerator config (name or YAML path)")
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--budget", type=positive_int, help="cycles per inference")
    g.add_argument("--budget-ratio", type=_ratio, help="fraction of uniform W8A8's simulated cycles")
    g.add_argument("--as-accurate-as", metavar="wXaY",
                   help="ilp: no cycle budget; the fastest policy whose sensitivity is at most that of this "
                        "uniform policy (e.g. w4a4)")
    p.add_argument("--init", required=True, help="full-precision checkpoint (bitmill train --quantizer fp)")
    p.add_argument("-o", "--out", required=True, help="output folder")
    p.add_argument("--min-bits", type=positive_int, default=2,
                   help="smallest weight and activation width searched (1-bit LSQ grids collapse)")
    p.add_argument("--min-act-bits", type=positive_int,
                   help="smallest activation width searched (default: --min-bits); e.g. 4 searches "
                        "weight widths under 4-bit-or-wider activations")
    p.add_argument("--sensitivity", default="fisher", choices=["fisher", "hessian", "loss"],
                   help="ilp: per-layer sensitivity from the empirical Fisher trace (FIT: never negative), "
                        "Hutchinson's Hessian trace (HAWQ-V3), or the measured calibration loss "
                        "increase of each layer quantized alone")
    p.add_argument("--calib-images", type=positive_int, default=256, help="ilp: images for the traces")
    p.add_argument("--calibration", metavar="RUNS",
                   help="ilp: weigh the sensitivity's weight and activation terms by factors fitted to the "
                        "uniform LSQ runs in this folder (their loss increase over the FP checkpoint)")
    p.add_argument("--calib-loss-images", type=positive_int, default=2048,
                   help="ilp, --calibration: training images the runs' losses are measured on")
    p.add_argument("--calib-batch", type=positive_int, default=128, help="ilp: images per calibration batch")
    p.add_argument("--samples", type=positive_int, default=8, help="ilp, hessian: Hutchinson vectors per batch")
    p.add_argument("--dataset", default="fashion-mnist", choices=["fashion-mnist", "synthetic"],
                   help="calibration images")
    p.add_argument("--seed", type=non_negative_int, default=0, help="seed of the calibration subset and vectors")
    p.add_argument("--epochs", type=positive_int, default=2, help="sdq: epochs of phase 1")
    p.add_argument("--lr", type=float, default=0.01, help="sdq: SGD learning rate (cosine over the epochs)")
    p.add_argument("--dbp-lr", type=float, default=0.5, help="sdq: Adam learning rate of the DBPs")
    p.add_argument("--lam", type=float, default=1.0, help="sdq: weight of the latency penalty")
    p.add_argument("--batch-size", type=positive_int, default=128, help="sdq: images per step")
    p.add_argument("--decay-every", type=positive_int, default=4,
                   help="sdq: steps between width-decay checks (and at every epoch's end)")
    p.add_argument("--train-images", type=positive_int, default=10000, help="sdq: training images of phase 1")
    p.add_argument("--resume", action="store_true",
                   help="reuse OUT/sensitivity.json (ilp) or continue OUT/phase1.pt (sdq) when the settings match")
    p.add_argument("--force", action="store_true", help="replace a non-empty OUT")
    p.set_defaults(func=cmd_search)
