"""The ``bitmill`` command line. User errors print one ``error:`` line and exit with status 2."""

from __future__ import annotations

import argparse
import sys
import time

from bitmill.errors import BitmillError

EXIT_USER_ERROR = 2


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one ``error:`` line and exit status 2."""

    def error(self, message: str) -> None:  # noqa: D401 (argparse API)
        print(f"error: {self.prog}: {message}", file=sys.stderr)
        sys.exit(EXIT_USER_ERROR)


def _add_net_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("net", nargs="?", help="saved network directory (graph.json + weights.npz)")
    p.add_argument("--model", help="built-in network instead of NET: resnet8, resnet20, resnet18")
    p.add_argument("--bits", default="w8a8", help="bit-widths of a built-in network, e.g. w4a4")
    p.add_argument("--first-last-bits", type=int, default=None,
                   help="bit-width of the first and last layer of a built-in network")
    p.add_argument("--seed", type=int, default=0, help="seed of weights and input images")


def load_net(args: argparse.Namespace):
    """The graph named by NET or --model/--bits/--seed."""
    from bitmill.compiler import irio, zoo

    if (args.net is None) == (args.model is None):
        raise BitmillError("give either a saved network directory NET or --model NAME, not both or neither")
    if args.net is not None:
        return irio.load_graph(args.net)
    bits = zoo.BitSpec.parse(args.bits, first_last_bits=args.first_last_bits)
    return zoo.build(args.model, bits, seed=args.seed)


def cmd_golden(args: argparse.Namespace) -> int:
    from bitmill.sim import golden
    from bitmill.sim.report import golden_table, random_input

    if args.batch < 1:
        raise BitmillError(f"--batch must be a positive integer, not {args.batch}")
    graph = load_net(args)
    x = random_input(graph, args.batch, args.seed)
    golden.run(graph, x)                       # warm-up: caches, BLAS threads
    timings: list[golden.LayerTiming] = []
    t0 = time.perf_counter()
    out = golden.run_all(graph, x, keep=False, timings=timings)[graph.output]
    wall = time.perf_counter() - t0
    print(golden_table(graph, timings, args.batch))
    print(f"wall time: {wall * 1e3:.1f} ms for batch {args.batch}; "
          f"output {graph.output} {tuple(out.shape)}, argmax {out.reshape(len(out), -1).argmax(1).tolist()}")
    return 0


def cmd_zoo(args: argparse.Namespace) -> int:
    from bitmill.compiler import irio

    graph = load_net(args)
    path = irio.save_graph(graph, args.output)
    print(f"saved {graph.name} ({len(graph.nodes)} nodes) to {path}")
    return 0


def cmd_config_check(args: argparse.Namespace) -> int:
    from bitmill.config import AccelConfig

    cfg = AccelConfig.load(args.file)
    print(f"ok: {cfg.name}: {cfg.rows}x{cfg.cols} {cfg.pe_family} PEs, {cfg.lanes} lanes, "
          f"W{cfg.weight_bits[0]}-{cfg.weight_bits[1]} A{cfg.act_bits[0]}-{cfg.act_bits[1]}, "
          f"{cfg.clock_mhz:g} MHz, board {cfg.board}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from bitmill import demo

    return demo.run(args)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="bitmill", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("demo", help="run the main job on the built-in default network")
    p.add_argument("--seed", type=int, default=0, help="seed of weights and input image")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("golden", help="exact integer inference with the golden model")
    _add_net_args(p)
    p.add_argument("--batch", type=int, default=1, help="images per run")
    p.set_defaults(func=cmd_golden)

    p = sub.add_parser("zoo", help="save a built-in network as a network directory")
    _add_net_args(p)
    p.add_argument("-o", "--output", required=True, help="directory to write")
    p.set_defaults(func=cmd_zoo)

    from bitmill import cli_compile, cli_models
    cli_models.register(sub)
    cli_compile.register(sub)

    p = sub.add_parser("config", help="accelerator configuration files")
    csub = p.add_subparsers(dest="config_command", required=True, parser_class=_Parser)
    c = csub.add_parser("check", help="validate a configs/accel/*.yaml file")
    c.add_argument("file")
    c.set_defaults(func=cmd_config_check)

    from bitmill import cli_hw
    cli_hw.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``bitmill`` console script."""
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except BitmillError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except BrokenPipeError:               # output piped into e.g. head
        sys.stderr.close()
        return 141
    except OSError as exc:
        print(f"error: {exc.filename or ''}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
