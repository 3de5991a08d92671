"""``bitmill compile`` and ``bitmill simulate``: the compiler and the cycle-accurate simulator."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from bitmill.cli import compiled_folder
from bitmill.cli.args import (add_output_dir_arg, CONFIG_HELP, add_config_arg, add_net_args, check_output_file,
                              load_net)
from bitmill.cli.arrays import load_input, save_output
from bitmill.compiler.pipeline import Compiled, compile_net
from bitmill.config import AccelConfig
from bitmill.errors import BitmillError
from bitmill.fileio import atomic_dir, atomic_write_text, check_new_dir
from bitmill.sim.check import overwritten, tensor_from_image
from bitmill.sim.plots import write_report
from bitmill.sim.report import random_image, sim_summary, sim_table
from bitmill.sim.verify import simulate_compiled


def _image(args: argparse.Namespace, graph):
    return load_input(args.input, graph) if args.input else random_image(graph, args.seed)


def cmd_compile(args: argparse.Namespace) -> int:
    out = check_new_dir(Path(args.output), args.force)
    graph = load_net(args)
    cfg = AccelConfig.resolve(args.config)
    x = _image(args, graph)
    compiled = compile_net(graph, cfg, x, reuse_memory=args.reuse_memory)
    with atomic_dir(out, args.force) as d:
        compiled_folder.write(d, graph, compiled, x)
    p = compiled.program
    print(f"compiled {graph.name} for {cfg.name}: {len(p.instructions)} instructions{p.describe_fills()}, "
          f"{len(p.memory):,} bytes of memory image, estimated "
          f"{sum(l.estimate.cycles for l in compiled.schedule.layers):,} cycles; wrote {out}/")
    return 0


def _compiled_from_folder(args: argparse.Namespace):
    """(graph, compiled, image) of the compiled folder NET; --input replaces its image."""
    if args.model is not None:
        raise BitmillError(f"{args.net} is a compiled folder; give it or --model NAME, not both")
    cfg = AccelConfig.resolve(args.config) if args.config else None
    folder = compiled_folder.read(args.net, cfg)
    graph, compiled, x = folder.graph, folder.compiled, folder.image
    if args.input:
        x = load_input(args.input, graph)
        program = compiled_folder.with_input(compiled.program, graph, x)
        compiled = Compiled(compiled.schedule, program)
    return graph, compiled, x


def _compiled_from_net(args: argparse.Namespace):
    """(graph, compiled, image) of NET or --model, compiled for --config."""
    if not args.config:
        raise BitmillError("--config is required unless NET is a compiled folder (with program.bin)")
    graph = load_net(args)
    cfg = AccelConfig.resolve(args.config)
    x = _image(args, graph)
    return graph, compile_net(graph, cfg, x), x


def compiled_for(args: argparse.Namespace):
    """(graph, compiled, image) of the command's NET: a compiled folder, or a network (NET or
    --model) compiled for --config."""
    from_folder = args.net is not None and compiled_folder.is_compiled_folder(args.net)
    return (_compiled_from_folder if from_folder else _compiled_from_net)(args)


def _check_outputs(args: argparse.Namespace) -> None:
    if args.stats:
        check_output_file(args.stats, "--stats")
    if args.output:
        check_output_file(args.output, "--output")
    if args.report:
        check_new_dir(Path(args.report), args.force)


def cmd_simulate(args: argparse.Namespace) -> int:
    _check_outputs(args)
    graph, compiled, x = compiled_for(args)
    t0 = time.perf_counter()
    image, stats = simulate_compiled(graph, compiled, x, progress=True)
    wall = time.perf_counter() - t0
    print(sim_table(stats))
    print(sim_summary(graph, stats, wall, len(overwritten(graph, compiled.program))))
    if args.stats:
        atomic_write_text(Path(args.stats), json.dumps(stats.to_dict(), indent=1))
        print(f"statistics written to {args.stats}")
    if args.output:
        save_output(args.output, tensor_from_image(image, compiled.program, graph.output,
                                                   graph[graph.output].out.shape))
        print(f"output codes of {graph.output} written to {args.output}")
    if args.report:
        with atomic_dir(Path(args.report), args.force) as d:
            write_report(stats, d)
        print(f"report written to {args.report}/")
    return 0


def add_program_args(p: argparse.ArgumentParser) -> None:
    """NET (a compiled folder or a network), --config and --input, as `compiled_for` reads them."""
    add_net_args(p, net_help="a compiled folder (with program.bin, from 'bitmill compile') or a "
                              "saved network directory (graph.json + weights.npz)")
    add_config_arg(p, required=False,
                   help=CONFIG_HELP + "; required unless NET is a compiled folder, whose own "
                                      "config.yaml is used by default")
    p.add_argument("--input", metavar="FILE.npy",
                   help="input image (integer codes of the network's input shape); replaces a "
                        "compiled folder's image (default: the folder's input.npy, or a random "
                        "image from --seed)")


def _add_compile(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("compile", help="lower a network to a program for an accelerator",
                       description="Lower a network to a program for an accelerator; the output "
                                   "folder holds the program, its memory image, the network and "
                                   "the input image, and runs with 'bitmill simulate DIR'.")
    add_net_args(p)
    add_config_arg(p)
    p.add_argument("--input", metavar="FILE.npy",
                   help="input image (integer codes of the network's input shape) written into "
                        "the memory image (default: a random image from --seed)")
    p.add_argument("--reuse-memory", action="store_true",
                   help="place activations in the bytes of tensors no longer read (a smaller "
                        "memory image; same instructions and cycles; the overwritten tensors are "
                        "not checked at the end)")
    add_output_dir_arg(p, "output folder")
    p.set_defaults(func=cmd_compile)


def _add_simulate(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("simulate", help="run a program cycle-accurately and check it against golden",
                       description="Run a compiled folder (written by 'bitmill compile'), or compile "
                                   "NET or --model for --config, cycle-accurately; check every "
                                   "tensor against the golden model.")
    add_program_args(p)
    p.add_argument("--output", metavar="FILE.npy", help="write the network's output codes here")
    p.add_argument("--stats", metavar="FILE", help="write the SimStats JSON here")
    p.add_argument("--report", metavar="DIR",
                   help="write plots of cycles and bounds per layer, stats.json and layers.md "
                        "into this folder (written whole)")
    p.add_argument("--force", action="store_true", help="replace an existing --report folder")
    p.set_defaults(func=cmd_simulate)


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``compile`` and ``simulate``."""
    _add_compile(sub)
    _add_simulate(sub)
