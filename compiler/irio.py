"""Saving and loading a `Graph` as one directory: ``graph.json`` plus ``weights.npz``.

``graph.json`` holds the schema version, the graph name, its output and the nodes with their
scalar fields; every array (weights, requant constants) lives in ``weights.npz`` under
``<node>.<field>``. Loading checks everything and raises `IRError` naming the file and the
problem; writing is atomic per file.
"""

from __future__ import annotations

import dataclasses
import io
import json
import zipfile
import zlib
from pathlib import Path

import numpy as np

from bitmill.errors import IRError
from bitmill.fileio import atomic_write_bytes, atomic_write_text, read_json
from bitmill.numerics import Encoding
from bitmill.compiler.ir import NODE_TYPES, Graph, Node, Requant, TensorType

SCHEMA_VERSION = 1
GRAPH_FILE = "graph.json"
WEIGHTS_FILE = "weights.npz"
_TUPLE_FIELDS = ("inputs",)


def _node_to_json(node: Node, arrays: dict[str, np.ndarray]) -> dict:
    d: dict = {"op": node.op}
    for key, value in vars(node).items():
        if isinstance(value, TensorType):
            d[key] = value.to_json()
        elif isinstance(value, Requant):
            for part in ("multiplier", "bias", "shift"):
                arrays[f"{node.name}.{key}.{part}"] = getattr(value, part)
            d[key] = {"requant": f"{node.name}.{key}"}
        elif isinstance(value, np.ndarray):
            arrays[f"{node.name}.{key}"] = value
            d[key] = {"array": f"{node.name}.{key}"}
        elif isinstance(value, Encoding):
            d[key] = value.label
        elif isinstance(value, tuple):
            d[key] = list(value)
        else:
            d[key] = value
    return d


def save_graph(graph: Graph, directory: str | Path) -> Path:
    """Write ``graph`` into ``directory`` (created if needed); return the directory."""
    graph.verify()
    directory = Path(directory)
    arrays: dict[str, np.ndarray] = {}
    nodes = [_node_to_json(n, arrays) for n in graph.nodes]
    doc = {"schema_version": SCHEMA_VERSION, "name": graph.name, "output": graph.output,
           "nodes": nodes}
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    atomic_write_bytes(directory / WEIGHTS_FILE, buf.getvalue())
    atomic_write_text(directory / GRAPH_FILE, json.dumps(doc, indent=1))
    return directory


def _read_arrays(path: Path) -> dict[str, np.ndarray]:
    """Every array of the archive; each must have an integer dtype (no coercion of floats,
    complex numbers or booleans)."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except FileNotFoundError:
        raise IRError(f"{path}: file is missing") from None
    except (zipfile.BadZipFile, EOFError, ValueError, OSError, zlib.error) as exc:
        raise IRError(f"{path}: not a readable weights archive (truncated or corrupt: {exc})") from None
    for key, arr in arrays.items():
        if arr.dtype.kind not in "iu":
            raise IRError(f"{path}: {key} has dtype {arr.dtype}; weights and requant constants "
                          f"are integer arrays")
    return arrays


def _node_from_json(d: dict, arrays: dict[str, np.ndarray]) -> Node:
    if not isinstance(d, dict):
        raise ValueError(f"a node is an object of fields, not {d!r}")
    cls = NODE_TYPES.get(d.get("op"))
    if cls is None:
        raise ValueError(f"unknown op {d.get('op')!r}; known: {', '.join(NODE_TYPES)}")
    fields = [f.name for f in dataclasses.fields(cls)]
    missing = [f for f in fields if f not in d]
    if missing:
        raise ValueError(f"node {d.get('name')!r} ({cls.op}) lacks field {missing[0]!r}")
    unknown = sorted(set(d) - set(fields) - {"op"})
    if unknown:
        raise ValueError(f"node {d.get('name')!r} ({cls.op}) has unknown field {unknown[0]!r}")
    kwargs = {}
    for key, value in d.items():
        if key == "op":
            continue
        if key == "out":
            try:
                value = TensorType.from_json(value)
            except IRError as exc:
                raise IRError(f"{d.get('name')}: out: {exc}") from None
        elif isinstance(value, dict) and "requant" in value:
            p = value["requant"]
            value = Requant(arrays[f"{p}.multiplier"], arrays[f"{p}.bias"], arrays[f"{p}.shift"])
        elif isinstance(value, dict) and "array" in value:
            value = arrays[value["array"]]
        elif key in _TUPLE_FIELDS:
            if not isinstance(value, list):
                raise ValueError(f"node {d.get('name')!r}: {key} must be a list of names, not {value!r}")
            value = tuple(value)
        elif key.endswith("enc"):
            if not isinstance(value, str):
                raise ValueError(f"node {d.get('name')!r}: {key} must be signed, unsigned or odd, "
                                 f"not {value!r}")
        kwargs[key] = value
    return cls(**kwargs)


def load_graph(directory: str | Path) -> Graph:
    """Read a graph saved by `save_graph`; verify it."""
    directory = Path(directory)
    if not directory.is_dir():
        raise IRError(f"{directory}: no such network directory (expected {GRAPH_FILE} and {WEIGHTS_FILE})")
    gpath = directory / GRAPH_FILE
    doc = read_json(gpath, error=IRError)
    if not isinstance(doc, dict) or "schema_version" not in doc:
        raise IRError(f"{gpath}: no schema_version; not a bitmill graph")
    if doc["schema_version"] != SCHEMA_VERSION:
        raise IRError(f"{gpath}: schema_version {doc['schema_version']!r} is not supported "
                      f"(this bitmill reads version {SCHEMA_VERSION})")
    arrays = _read_arrays(directory / WEIGHTS_FILE)
    try:
        if not isinstance(doc.get("nodes"), list):
            raise ValueError("nodes must be a list of node objects")
        nodes = [_node_from_json(d, arrays) for d in doc["nodes"]]
        graph = Graph(tuple(nodes), doc["output"], doc.get("name", "net"))
    except KeyError as exc:
        raise IRError(f"{gpath}: missing entry {exc} (graph.json and weights.npz do not match)") from None
    except IRError as exc:
        raise IRError(f"{gpath}: {exc}") from None
    except (TypeError, ValueError, AttributeError) as exc:
        raise IRError(f"{gpath}: malformed node ({exc})") from None
    try:
        return graph.verify()
    except IRError as exc:
        raise IRError(f"{gpath}: {exc}") from None
