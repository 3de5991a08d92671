"""Input images and output codes as ``.npy`` files: ``--input FILE.npy`` and ``--output FILE.npy``."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from bitmill.compiler.ir import Graph
from bitmill.errors import BitmillError
from bitmill.fileio import atomic_write_bytes


NPY_MAGIC = b"\x93NUMPY"


def _read_npy(path: Path, what: str) -> np.ndarray:
    try:
        with open(path, "rb") as fh:
            if fh.read(len(NPY_MAGIC)) != NPY_MAGIC:
                raise BitmillError(f"{what}: not a numpy .npy file (no NUMPY header); save the "
                                   f"codes with numpy.save")
            fh.seek(0)
            return np.load(fh, allow_pickle=False)
    except FileNotFoundError:
        raise BitmillError(f"{what}: no such file") from None
    except IsADirectoryError:
        raise BitmillError(f"{what}: is a folder; give a .npy file") from None
    except (ValueError, OSError, EOFError) as exc:
        raise BitmillError(f"{what}: not a readable .npy array of integers "
                           f"({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})") from None


def load_input(path: str | Path, graph: Graph, batch: bool = False,
               option: str = "--input") -> np.ndarray:
    """Integer codes of the graph's input from a ``.npy`` file: one image of the input shape,
    or with ``batch`` also ``(N, *shape)``. `BitmillError` naming the file and what was
    expected on a wrong dtype, shape or value (``option``: how the message names the file)."""
    path = Path(path)
    what = f"{option} {path}" if option else str(path)
    x = _read_npy(path, what)
    t = graph.input.out
    shapes = f"{t.shape}" + (f" (one image) or (N, {', '.join(map(str, t.shape))})" if batch else "")
    if not np.issubdtype(x.dtype, np.integer):
        raise BitmillError(f"{what}: dtype {x.dtype}; expected integer codes (e.g. uint8, "
                           f"int64) of {graph.input.name}, not real values")
    if tuple(x.shape) != t.shape and not (batch and x.ndim == len(t.shape) + 1
                                          and tuple(x.shape[1:]) == t.shape and len(x)):
        raise BitmillError(f"{what}: shape {tuple(x.shape)}; expected {shapes}, the shape "
                           f"of {graph.name}'s input")
    lo, hi = t.range
    if x.size and (x.min() < lo or x.max() > hi):
        raise BitmillError(f"{what}: values {x.min()}..{x.max()}; the input grid of "
                           f"{graph.name} is {lo}..{hi} ({t.bits}-bit {t.encoding.value})")
    return x.astype(np.int64)


def save_output(path: str | Path, codes: np.ndarray) -> None:
    """Write ``codes`` to ``path`` as a ``.npy`` file, atomically."""
    buf = io.BytesIO()
    np.save(buf, np.asarray(codes))
    atomic_write_bytes(Path(path), buf.getvalue())
