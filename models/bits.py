"""Per-layer bit-widths: ``BitAssignment`` maps each conv/dense layer to (w_bits, a_bits).

``a_bits`` is the bit-width of the layer's *input* activations (the quantizer in front of it).
By default the first and last layers are 8-bit. Readable from YAML::

    default: w4a4          # or {w: 4, a: 4}
    first_last: 8          # null keeps the default there too
    layers:
      layer2.0.conv1: w2a4
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml

from bitmill.errors import BitmillError
from bitmill.precision import check_runtime_bits, parse_bits

_KEYS = {"default", "first_last", "layers"}


def parse_pair(value, where: str = "bits") -> tuple[int, int]:
    """``"w4a4"``, ``{w: 4, a: 4}`` or ``[4, 4]`` -> (4, 4), validated to 1..8."""
    if isinstance(value, str):
        return parse_bits(value, where)
    if isinstance(value, dict) and set(value) == {"w", "a"}:
        pair = (value["w"], value["a"])
    elif isinstance(value, (list, tuple)) and len(value) == 2:
        pair = tuple(value)
    else:
        raise BitmillError(f"{where} must be w4a4, {{w: 4, a: 4}} or [4, 4], not {value!r}")
    return tuple(check_runtime_bits(f"{where}: {name} bits", b)
                 for name, b in zip(("weight", "activation"), pair))


@dataclass(frozen=True)
class BitAssignment:
    """Bit-widths per layer name; unnamed layers take ``default`` (``first_last`` for the
    first and last layer when set)."""

    default: tuple[int, int]
    first_last: int | None = 8
    layers: tuple[tuple[str, tuple[int, int]], ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        object.__setattr__(self, "default", parse_pair(self.default, "default"))
        if self.first_last is not None:
            parse_pair((self.first_last, self.first_last), "first_last")
        object.__setattr__(self, "layers", tuple(
            (str(k), parse_pair(v, f"layers.{k}")) for k, v in dict(self.layers).items()))

    @classmethod
    def parse(cls, text: str, first_last: int | None = 8) -> "BitAssignment":
        """From ``"w4a4"`` (uniform, first/last 8-bit by default)."""
        return cls(parse_pair(text), first_last)

    @classmethod
    def load(cls, path: str | Path) -> "BitAssignment":
        try:
            data = yaml.safe_load(Path(path).read_text())
        except (OSError, yaml.YAMLError) as exc:
            raise BitmillError(f"cannot read bit assignment {path}: {exc}") from None
        if not isinstance(data, dict) or not set(data) <= _KEYS or "default" not in data:
            raise BitmillError(f"{path}: expected keys default (required), first_last, layers")
        return cls(data["default"], data.get("first_last", 8), tuple((data.get("layers") or {}).items()))

    def of(self, layer: str, edge: bool = False) -> tuple[int, int]:
        """(w_bits, a_bits) of a layer; ``edge`` marks the first and last layer."""
        named = dict(self.layers)
        if layer in named:
            return named[layer]
        if edge and self.first_last is not None:
            return (self.first_last, self.first_last)
        return self.default

    @property
    def label(self) -> str:
        w, a = self.default
        return f"W{w}A{a}"
