"""Training checkpoints: self-describing (architecture, method, bits), written atomically."""

from __future__ import annotations

import io
import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch

from bitmill.errors import BitmillError
from bitmill.fileio import atomic_write_bytes

FORMAT = "bitmill-checkpoint"
VERSION = 1


def save(path: Path, payload: dict[str, Any]) -> None:
    """Write ``payload`` (plus format tag) to ``path`` atomically."""
    buf = io.BytesIO()
    torch.save({"format": FORMAT, "version": VERSION, **payload}, buf)
    atomic_write_bytes(Path(path), buf.getvalue())


def load(path: str | Path) -> dict[str, Any]:
    """Read a checkpoint written by `save`; `BitmillError` naming the file otherwise."""
    path = Path(path)
    if not path.is_file():
        raise BitmillError(f"{path}: no such checkpoint file")
    try:
        data = torch.load(path, map_location="cpu", weights_only=False)
    except (RuntimeError, EOFError, OSError, ValueError, pickle.UnpicklingError,
            zipfile.BadZipFile) as exc:
        raise BitmillError(f"{path}: not a readable checkpoint ({type(exc).__name__})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise BitmillError(f"{path}: not a bitmill training checkpoint")
    if data.get("version") != VERSION:
        raise BitmillError(f"{path}: checkpoint version {data.get('version')} is not supported "
                           f"(this bitmill reads version {VERSION})")
    return data


def load_compatible(model: torch.nn.Module, state: dict[str, torch.Tensor], source: str,
                    describe: str) -> list[str]:
    """Load every tensor of ``state`` whose name and shape the model has (quantizer parameters
    of another method or bit-width are skipped and initialise on the first batch). Raise when a
    shared tensor has another shape: the checkpoint is of another architecture."""
    own = model.state_dict()
    for name, value in state.items():
        if name in own and own[name].shape != value.shape:
            raise BitmillError(f"{source} is a checkpoint of another architecture: {name} has shape "
                               f"{tuple(value.shape)}, {describe} needs {tuple(own[name].shape)}")
    weights = [n for n in own if n.endswith(".weight") and "bn" not in n]
    if not any(n in state for n in weights):
        raise BitmillError(f"{source} shares no layer with {describe}: another architecture")
    loadable = {k: v for k, v in state.items() if k in own}
    model.load_state_dict(loadable, strict=False)
    return sorted(set(own) - set(loadable))
