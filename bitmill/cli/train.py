"""``bitmill train``, ``bitmill export`` and ``bitmill report qat``: the training side.

The torch modules are imported when a command runs, so that the other commands start
without loading torch."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from bitmill.cli import report_search
from bitmill.cli.args import (add_output_dir_arg, SEED_HELP, Parser, bit_schedule, int_in_range, non_negative_int,
                              positive_int)
from bitmill.compiler import irio
from bitmill.fileio import atomic_dir, check_new_dir
from bitmill.models.bits import BitAssignment, parse_pair
from bitmill.models.report_qat import BITS, METHODS, Budget, generate


def cmd_train(args: argparse.Namespace) -> int:
    from bitmill.models.train import TrainConfig, train

    stages = args.progressive
    layer_bits = ()
    if args.bits_file:
        a = BitAssignment.load(args.bits_file)
        args.bits, args.first_last = f"w{a.default[0]}a{a.default[1]}", a.first_last or 0
        layer_bits = tuple((n, f"w{w}a{b}") for n, (w, b) in a.layers)
    base = dict(model=args.model, width=args.width, quantizer=args.quantizer,
                first_last=None if args.first_last == 0 else args.first_last, epochs=args.epochs,
                batch_size=args.batch_size, lr=args.lr, weight_decay=args.weight_decay,
                seed=args.seed, train_subset=args.train_subset, test_subset=args.test_subset,
                augment=not args.no_augment, dataset=args.dataset, layer_bits=layer_bits,
                teacher=args.teacher, ebr=args.ebr)
    if not stages:
        metrics = train(TrainConfig(bits=args.bits, **base), args.out, args.init, args.resume)
    else:
        init = args.init
        for b in stages:                     # QIL's progressive schedule, e.g. 8,5,4,3,2
            stage_dir = Path(args.out) / f"w{b}a{b}"
            done = (stage_dir / "metrics.json").exists()
            metrics = train(TrainConfig(bits=f"w{b}a{b}", **base), stage_dir, init,
                            resume=args.resume or done) if not done else _read(stage_dir)
            init = str(stage_dir / "checkpoint.pt")
    print(f"done: test accuracy {metrics['test_accuracy']:.4f}; checkpoint and metrics in {stage_dir if stages else args.out}")
    return 0


def _read(d: Path) -> dict:
    return json.loads((d / "metrics.json").read_text())


def cmd_export(args: argparse.Namespace) -> int:
    from bitmill.models.export import export
    from bitmill.models.train import load_model

    out = check_new_dir(Path(args.output), args.force)
    model, cfg = load_model(args.checkpoint)
    graph = export(model)
    with atomic_dir(out, args.force) as d:
        irio.save_graph(graph, d)
    print(f"exported {graph.name} ({len(graph.nodes)} nodes) to {out}")
    return 0


def cmd_report_qat(args: argparse.Namespace) -> int:
    from bitmill.models.methods import Method

    budget = Budget(fp_epochs=args.fp_epochs, qat_epochs=args.qat_epochs, width=args.width,
                    train_subset=args.train_subset, test_subset=args.test_subset,
                    dataset=args.dataset, seed=args.seed)
    methods = args.methods.split(",") if args.methods else METHODS
    bits = args.bits.split(",") if args.bits else BITS
    for m in methods:
        Method.parse(m)
    for b in bits:
        parse_pair(b)
    path = generate(budget, Path(args.runs), Path(args.out), methods, bits, args.finished_only,
                    args.retrain)
    print(f"wrote {path} and {path.parent / 'accuracy.png'}")
    return 0


def _add_train(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a (quantized) ResNet on Fashion-MNIST")
    p.add_argument("--model", default="resnet20", choices=["resnet8", "resnet20", "resnet18"],
                   help="architecture")
    p.add_argument("--width", type=positive_int, default=16, help="channels of the first stage")
    p.add_argument("--quantizer", default="fp",
                   help="fp, lsq, pact (with sawb weights), qil, daq, dq, or ACT+WEIGHT")
    p.add_argument("--bits", default="w4a4", help="weight and activation bits, e.g. w4a4")
    p.add_argument("--bits-file", help="YAML bit assignment (default, first_last, layers)")
    p.add_argument("--first-last", type=int_in_range(0, 8), default=8,
                   help="bits of the first and last layer, 1..8 (0: same as --bits)")
    p.add_argument("--progressive", type=bit_schedule,
                   help="bit schedule, e.g. 8,5,4,3,2 (one stage per value, each in 1..8)")
    p.add_argument("--epochs", type=positive_int, default=1, help="training epochs")
    p.add_argument("--batch-size", type=positive_int, default=128, help="images per step")
    p.add_argument("--lr", type=float, default=0.1, help="initial learning rate (cosine decay to 0)")
    p.add_argument("--weight-decay", type=float, default=5e-4, help="weight decay")
    p.add_argument("--seed", type=non_negative_int, default=0, help=SEED_HELP)
    p.add_argument("--train-subset", type=positive_int, help="train on this many images")
    p.add_argument("--test-subset", type=positive_int, help="evaluate on this many images")
    p.add_argument("--no-augment", action="store_true", help="no random crop / flip")
    p.add_argument("--dataset", default="fashion-mnist", choices=["fashion-mnist", "synthetic"],
                   help="training data")
    p.add_argument("--out", required=True, help="run directory (checkpoint.pt, metrics.json)")
    p.add_argument("--init", help="checkpoint to start from (e.g. the FP run)")
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt")
    p.add_argument("--teacher", help="SDQ phase 2: distil from this full-precision checkpoint (KL to its soft labels)")
    p.add_argument("--ebr", type=float, default=0.0,
                   help="SDQ phase 2: weight of the entropy-aware bin regulariser of the weights (SDQ: 0.1)")
    p.set_defaults(func=cmd_train)


def _add_report(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help="generated reports")
    rsub = p.add_subparsers(dest="report", required=True, parser_class=Parser)
    r = rsub.add_parser("qat", help="QAT accuracy table and chart (reports/qat)")
    r.add_argument("--runs", default="runs/qat", help="training run directories (reused, resumable)")
    r.add_argument("--out", default="reports/qat", help="report folder (README.md, accuracy.png, results.json)")
    r.add_argument("--fp-epochs", type=positive_int, default=10, help="epochs of the full-precision pre-training")
    r.add_argument("--qat-epochs", type=positive_int, default=2, help="epochs of each quantized fine-tuning run")
    r.add_argument("--width", type=positive_int, default=16, help="channels of the first ResNet-20 stage")
    r.add_argument("--train-subset", type=positive_int, help="train on this many images (default: all)")
    r.add_argument("--test-subset", type=positive_int, help="evaluate on this many images (default: all)")
    r.add_argument("--dataset", default="fashion-mnist", choices=["fashion-mnist", "synthetic"],
                   help="training and test images")
    r.add_argument("--methods", help="comma-separated subset of lsq,pact+sawb,qil,daq,dq")
    r.add_argument("--bits", help="comma-separated subset of w4a4,w3a3,w2a2")
    r.add_argument("--seed", type=non_negative_int, default=0, help="seed of every run (initialisation, data order, subsets)")
    r.add_argument("--finished-only", action="store_true",
                   help="write the report from finished runs only (the rest listed as pending)")
    r.add_argument("--retrain", action="store_true",
                   help="train every run even where OUT/results.json has a result of the same configuration")
    r.set_defaults(func=cmd_report_qat)
    report_search.add_parser(rsub)


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``train``, ``report qat`` and ``export``."""
    _add_train(sub)
    _add_report(sub)
    p = sub.add_parser("export", help="trained checkpoint -> integer network directory")
    p.add_argument("checkpoint", help="checkpoint.pt of a training run")
    add_output_dir_arg(p, "network folder")
    p.set_defaults(func=cmd_export)
