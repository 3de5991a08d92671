"""The folder `bitmill compile` writes and `bitmill simulate DIR` runs.

``program.bin`` (header + instructions), ``memory.bin`` (the DRAM image), ``config.yaml``,
``symbols.json`` (every DRAM region), ``segments.json`` (first instruction of each layer),
``schedule.json``/``schedule.md`` (tiling and the cost model's estimate), ``program.lst``
(the listing), ``net/`` (the network, `bitmill.compiler.irio`) and ``input.npy`` (the input
image written into the memory image)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from bitmill.cli.arrays import load_input, save_output
from bitmill.compiler import irio
from bitmill.compiler.ir import Graph
from bitmill.compiler.lower import lower
from bitmill.compiler.pipeline import Compiled
from bitmill.compiler.report import listing, schedule_markdown
from bitmill.config import AccelConfig
from bitmill.errors import BitmillError
from bitmill.fileio import read_json
from bitmill.geometry import nhwc_rows, to_nhwc_rows
from bitmill.isa import Program, Segment
from bitmill.numerics import Encoding
from bitmill.packing import Region, pack_rows
from bitmill.program_file import pack_program, unpack_program

PROGRAM, MEMORY, CONFIG = "program.bin", "memory.bin", "config.yaml"
SYMBOLS, SEGMENTS, NET, INPUT = "symbols.json", "segments.json", "net", "input.npy"


def is_compiled_folder(path: str | Path) -> bool:
    """Whether ``path`` is a folder holding a ``program.bin``."""
    return (Path(path) / PROGRAM).is_file()


def write(d: Path, graph: Graph, compiled: Compiled, x: np.ndarray) -> None:
    """Fill the (empty, temporary) folder ``d`` with every file of a compiled network."""
    p = compiled.program
    (d / PROGRAM).write_bytes(pack_program(p))
    (d / "program.lst").write_text(listing(p))
    (d / MEMORY).write_bytes(p.memory)
    (d / SYMBOLS).write_text(json.dumps([r.to_dict() for r in p.symbols], indent=1))
    (d / SEGMENTS).write_text(json.dumps([s.to_dict() for s in p.segments], indent=1))
    (d / "schedule.json").write_text(json.dumps([asdict(l) for l in compiled.schedule.layers], indent=1))
    (d / "schedule.md").write_text(schedule_markdown(compiled))
    p.config.dump(d / CONFIG)
    irio.save_graph(graph, d / NET)
    save_output(d / INPUT, x)


@dataclass(frozen=True, eq=False)
class CompiledFolder:
    """A compiled network read back: its graph, the program with the schedule of the graph
    lowered again for the program's configuration, and the input image."""

    graph: Graph
    compiled: Compiled
    image: np.ndarray


def _json_list(path: Path, keys: tuple[str, ...]) -> list[dict]:
    doc = read_json(path, missing="compile the network again")
    if not isinstance(doc, list) or not all(isinstance(e, dict) and set(keys) <= set(e) for e in doc):
        raise BitmillError(f"{path}: expected a list of records with {', '.join(keys)}")
    return doc


def _symbols(path: Path) -> tuple[Region, ...]:
    keys = ("name", "addr", "rows", "row_codes", "bits", "encoding")
    try:
        return tuple(Region(e["name"], int(e["addr"]), int(e["rows"]), int(e["row_codes"]),
                            int(e["bits"]), Encoding(e["encoding"])) for e in _json_list(path, keys))
    except (TypeError, ValueError) as exc:
        raise BitmillError(f"{path}: malformed region ({exc})") from None


def _segments(path: Path) -> tuple[Segment, ...]:
    try:
        return tuple(Segment(str(e["layer"]), int(e["first"])) for e in _json_list(path, ("layer", "first")))
    except (TypeError, ValueError) as exc:
        raise BitmillError(f"{path}: malformed segment ({exc})") from None


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise BitmillError(f"{path}: file is missing; compile the network again") from None


def _check_matches(folder: Path, graph: Graph, compiled: Compiled) -> None:
    """The program's layers and regions are those of the saved network."""
    p = compiled.program
    layers, want = [s.layer for s in p.segments], list(compiled.layer_ops())
    if layers != want:
        raise BitmillError(f"{folder / SEGMENTS}: layers {layers[:3]}... do not match the network in "
                           f"{folder / NET} ({want[:3]}...); compile the network again")
    regions = {r.name: r for r in p.symbols}
    for node in graph.nodes:
        r = regions.get(node.name)
        if r is None or (r.rows, r.row_codes) != nhwc_rows(node.out.shape) or r.addr + r.nbytes > len(p.memory):
            raise BitmillError(f"{folder / SYMBOLS}: no region of shape {node.out.shape} inside "
                               f"{folder / MEMORY} for tensor {node.name!r}; compile the network again")


def read(folder: str | Path, cfg: AccelConfig | None = None) -> CompiledFolder:
    """The compiled network in ``folder`` (``cfg``: the configuration it must have been
    compiled for; by default its ``config.yaml``)."""
    folder = Path(folder)
    cfg = cfg or AccelConfig.load(folder / CONFIG)
    program = unpack_program(_read_bytes(folder / PROGRAM), _read_bytes(folder / MEMORY), cfg,
                             source=str(folder / PROGRAM), symbols=_symbols(folder / SYMBOLS),
                             segments=_segments(folder / SEGMENTS))
    graph = irio.load_graph(folder / NET)
    compiled = Compiled(lower(graph, cfg), program)
    _check_matches(folder, graph, compiled)
    image = load_input(folder / INPUT, graph, option="")
    return CompiledFolder(graph, compiled, image)


def with_input(program: Program, graph: Graph, x: np.ndarray) -> Program:
    """``program`` with the input region of its memory image holding the image ``x``."""
    t, r = graph.input.out, program.region(graph.input.name)
    blob = pack_rows(to_nhwc_rows(x, t.shape), r.bits, r.encoding)
    memory = bytearray(program.memory)
    memory[r.addr:r.addr + len(blob)] = blob
    return replace(program, memory=bytes(memory))
