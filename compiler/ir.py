"""The integer network IR: a frozen graph of integer operators with typed tensors.

Tensors are per sample (no batch dimension): ``(C, H, W)`` feature maps or ``(F,)`` vectors.
Every tensor has a `TensorType`: shape, bit-width, `Encoding` and the real value of one integer
step (``scale``, informational: the integer computation never reads it).

Operators (all integer, exactly as `bitmill.sim.golden` computes them):

* `Conv2d`: cross-correlation with zero padding, accumulate, fused requant output stage
  (`Requant`, per output channel; conv bias and BatchNorm fold into its bias), optional ReLU.
* `Dense`: the same on vectors.
* `Add`: residual add ``clamp(round_shift(a*Ma + b*Mb + B, n))``, optional ReLU.
* `MaxPool`: max over windows; padding never wins the max.
* `GlobalAvgPool`: per-channel sum over H*W then a per-channel `Requant` (the 1/(H*W) folds
  into the multiplier); output ``(C, 1, 1)``.
* `Flatten`: ``(C, H, W) -> (C*H*W,)``.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from bitmill import numerics
from bitmill.errors import IRError, NumericsError
from bitmill.numerics import Encoding
from bitmill.precision import MAX_RUNTIME_BITS

ACT_ENCODINGS = (Encoding.SIGNED, Encoding.UNSIGNED)


INT64_MAX = (1 << 63) - 1


def _frozen_array(values, what: str) -> np.ndarray:
    """A read-only int64 copy of ``values``, which must be integers: an integer array, or
    finite floats with integral values (as numpy computes them); anything else is an `IRError`
    naming ``what``."""
    try:
        arr = np.asarray(values)
    except (ValueError, OverflowError) as exc:
        raise IRError(f"{what} is not an integer array ({exc})") from None
    kind = arr.dtype.kind
    if kind == "f":
        if not np.all(np.isfinite(arr)) or not np.array_equal(arr, np.round(arr)):
            raise IRError(f"{what} must be integers, not fractional, NaN or infinite values")
        if arr.size and np.max(np.abs(arr)) >= 2.0 ** 63:
            raise IRError(f"{what} has values outside the signed 64-bit range")
    elif kind == "u":
        if arr.size and int(arr.max()) > INT64_MAX:
            raise IRError(f"{what} has values above 2^63-1, outside the signed 64-bit range")
    elif kind != "i":
        raise IRError(f"{what} must be an integer array, not {arr.dtype}")
    out = np.array(arr, dtype=np.int64, copy=True)
    out.flags.writeable = False
    return out


def _strict_int(what: str, value) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise IRError(f"{what} must be an integer, not {value!r}")
    if not -INT64_MAX - 1 <= int(value) <= INT64_MAX:
        raise IRError(f"{what} {value} is outside the signed 64-bit range")
    return int(value)


def _encoding(what: str, value) -> Encoding:
    try:
        return Encoding(value)
    except ValueError:
        raise IRError(f"{what} must be one of {', '.join(e.label for e in Encoding)}, not {value!r}") from None


def _strict_bool(what: str, value) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise IRError(f"{what} must be true or false, not {value!r}")
    return bool(value)


@dataclass(frozen=True)
class TensorType:
    """Per-sample shape, bit-width, encoding and real step of an integer tensor."""

    shape: tuple[int, ...]
    bits: int
    encoding: Encoding
    scale: float = 1.0

    def __post_init__(self) -> None:
        if not isinstance(self.shape, (tuple, list)):
            raise IRError(f"tensor shape must be a list of integers, not {self.shape!r}")
        object.__setattr__(self, "shape", tuple(_strict_int("tensor shape", s) for s in self.shape))
        object.__setattr__(self, "bits", _strict_int("tensor bits", self.bits))
        if not 1 <= self.bits <= numerics.MAX_BITS:
            raise IRError(f"tensor bits must be an integer in 1..{numerics.MAX_BITS}, not {self.bits}")
        object.__setattr__(self, "encoding", _encoding("tensor encoding", self.encoding))
        if isinstance(self.scale, bool) or not isinstance(self.scale, (int, float, np.floating)) \
                or not math.isfinite(self.scale):
            raise IRError(f"tensor scale must be a finite number, not {self.scale!r}")
        object.__setattr__(self, "scale", float(self.scale))

    @property
    def range(self) -> tuple[int, int]:
        """Smallest and largest integer value."""
        return numerics.value_range(self.bits, self.encoding)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))

    def to_json(self) -> dict:
        return {"shape": list(self.shape), "bits": self.bits, "encoding": self.encoding.label,
                "scale": self.scale}

    @classmethod
    def from_json(cls, d: dict) -> "TensorType":
        if not isinstance(d, dict) or set(d) != {"shape", "bits", "encoding", "scale"}:
            raise IRError(f"a tensor type has the keys shape, bits, encoding, scale, not {d!r}")
        if not isinstance(d["encoding"], str):
            raise IRError(f"tensor encoding must be signed, unsigned or odd, not {d['encoding']!r}")
        return cls(d["shape"], d["bits"], d["encoding"], d["scale"])


@dataclass(frozen=True, eq=False)
class Requant:
    """Per-channel output stage ``clamp(round_shift(acc*multiplier + bias, shift))``."""

    multiplier: np.ndarray
    bias: np.ndarray
    shift: np.ndarray

    def __post_init__(self) -> None:
        for name in ("multiplier", "bias", "shift"):
            object.__setattr__(self, name, _frozen_array(np.atleast_1d(getattr(self, name)),
                                                         f"requant {name}"))

    @property
    def channels(self) -> int:
        return int(self.multiplier.shape[0])

    def problems(self, channels: int) -> list[str]:
        """What is inconsistent about this stage for ``channels`` outputs."""
        out = []
        for name in ("multiplier", "bias", "shift"):
            arr = getattr(self, name)
            if arr.shape != (channels,):
                out.append(f"requant {name} has shape {arr.shape}, expected ({channels},)")
        lim = 1 << (numerics.MULT_BITS - 1)
        if self.multiplier.size and (self.multiplier.min() < -lim or self.multiplier.max() >= lim):
            out.append(f"requant multiplier outside the signed {numerics.MULT_BITS}-bit range")
        if self.shift.size and (self.shift.min() < 0 or self.shift.max() > numerics.MAX_SHIFT):
            out.append(f"requant shift outside 0..{numerics.MAX_SHIFT}")
        return out


@dataclass(frozen=True, eq=False)
class Node:
    """Common fields: unique ``name``, names of the input tensors, type of the output."""

    name: str
    inputs: tuple[str, ...]
    out: TensorType
    op: ClassVar[str] = "node"

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise IRError(f"a node name must be a non-empty string, not {self.name!r}")
        if not isinstance(self.inputs, (tuple, list)) or not all(isinstance(i, str) for i in self.inputs):
            raise IRError(f"{self.name}: inputs must be a list of node names, not {self.inputs!r}")
        object.__setattr__(self, "inputs", tuple(self.inputs))
        if not isinstance(self.out, TensorType):
            raise IRError(f"{self.name}: out must be a tensor type, not {self.out!r}")
        for f in dataclasses.fields(self):        # scalar fields keep the type of their default
            value = getattr(self, f.name)
            if isinstance(f.default, bool):
                object.__setattr__(self, f.name, _strict_bool(f"{self.name}: {f.name}", value))
            elif isinstance(f.default, int):
                object.__setattr__(self, f.name, _strict_int(f"{self.name}: {f.name}", value))

    def infer_shape(self, in_types: list[TensorType]) -> tuple[int, ...]:
        """Output shape implied by the input types (raises ValueError with the reason)."""
        raise NotImplementedError

    def problems(self, in_types: list[TensorType]) -> list[str]:
        """Inconsistencies of this node given its input types."""
        return []


@dataclass(frozen=True, eq=False)
class Input(Node):
    op: ClassVar[str] = "input"

    def infer_shape(self, in_types):
        return self.out.shape


def _conv_out(size: int, k: int, stride: int, pad: int) -> int:
    return (size + 2 * pad - k) // stride + 1


@dataclass(frozen=True, eq=False)
class _Weighted(Node):
    """Conv2d and Dense: integer weights, fused requant, optional ReLU."""

    weight: np.ndarray = None
    w_bits: int = 8
    w_enc: Encoding = Encoding.SIGNED
    requant: Requant = None
    relu: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "weight", _frozen_array(self.weight, f"{self.name}: weight"))
        object.__setattr__(self, "w_enc", _encoding(f"{self.name}: w_enc", self.w_enc))

    @property
    def k(self) -> int:
        """Dot-product length of one output element."""
        return int(np.prod(self.weight.shape[1:]))

    @property
    def out_range(self) -> tuple[int, int]:
        lo, hi = self.out.range
        return (max(lo, 0), hi) if self.relu else (lo, hi)

    def acc_bound(self, in_type: TensorType) -> int:
        return numerics.accumulator_bound(self.k, self.w_bits, self.w_enc,
                                          in_type.bits, in_type.encoding)

    def problems(self, in_types):
        out = []
        x = in_types[0]
        if x.encoding not in ACT_ENCODINGS:
            out.append(f"input encoding {x.encoding.label} is not an activation encoding "
                       f"(signed or unsigned)")
        if not 1 <= self.w_bits <= MAX_RUNTIME_BITS:
            out.append(f"w_bits must be in 1..{MAX_RUNTIME_BITS}, not {self.w_bits}")
        elif not numerics.on_grid(self.weight, self.w_bits, self.w_enc):
            out.append(f"weights are not on the {self.w_bits}-bit {self.w_enc.label} grid")
        out += self.requant.problems(self.weight.shape[0])
        if not out and not numerics.requant_fits(self.acc_bound(x), self.requant.multiplier,
                                                 self.requant.bias):
            out.append("acc*multiplier+bias can exceed 2^62")
        return out


@dataclass(frozen=True, eq=False)
class Conv2d(_Weighted):
    stride: int = 1
    padding: int = 0
    op: ClassVar[str] = "conv2d"

    def infer_shape(self, in_types):
        x = in_types[0]
        if len(x.shape) != 3:
            raise ValueError(f"input must be (C, H, W), got {x.shape}")
        if self.weight.ndim != 4:
            raise ValueError(f"weight must be (O, I, kh, kw), got {self.weight.shape}")
        o, i, kh, kw = self.weight.shape
        if i != x.shape[0]:
            raise ValueError(f"weight expects {i} input channels, input has {x.shape[0]}")
        if self.stride < 1 or self.padding < 0:
            raise ValueError(f"stride must be >= 1 and padding >= 0, got {self.stride}, {self.padding}")
        h, w = _conv_out(x.shape[1], kh, self.stride, self.padding), \
            _conv_out(x.shape[2], kw, self.stride, self.padding)
        if h < 1 or w < 1:
            raise ValueError(f"kernel {kh}x{kw} larger than padded input {x.shape[1:]}")
        return (o, h, w)


@dataclass(frozen=True, eq=False)
class Dense(_Weighted):
    op: ClassVar[str] = "dense"

    def infer_shape(self, in_types):
        x = in_types[0]
        if len(x.shape) != 1:
            raise ValueError(f"input must be a vector, got {x.shape}")
        if self.weight.ndim != 2 or self.weight.shape[1] != x.shape[0]:
            raise ValueError(f"weight {self.weight.shape} does not match input {x.shape}")
        return (self.weight.shape[0],)


@dataclass(frozen=True, eq=False)
class Add(Node):
    mult_a: int = 1
    mult_b: int = 1
    bias: int = 0
    shift: int = 0
    relu: bool = False
    op: ClassVar[str] = "add"

    @property
    def out_range(self) -> tuple[int, int]:
        lo, hi = self.out.range
        return (max(lo, 0), hi) if self.relu else (lo, hi)

    def infer_shape(self, in_types):
        a, b = in_types
        if a.shape != b.shape:
            raise ValueError(f"inputs have different shapes {a.shape} and {b.shape}")
        return a.shape

    def sum_bound(self, in_types: list[TensorType]) -> int:
        """Largest ``|a*mult_a + b*mult_b|`` for the input types."""
        return sum(numerics.max_abs(t.bits, t.encoding) * abs(m)
                   for t, m in zip(in_types, (self.mult_a, self.mult_b)))

    def problems(self, in_types):
        lim = 1 << (numerics.MULT_BITS - 1)
        out = [f"{n} {v} outside the signed {numerics.MULT_BITS}-bit range"
               for n, v in (("mult_a", self.mult_a), ("mult_b", self.mult_b)) if not -lim <= v < lim]
        if not 0 <= self.shift <= numerics.MAX_SHIFT:
            out.append(f"shift {self.shift} outside 0..{numerics.MAX_SHIFT}")
        if self.inputs[0] == self.inputs[1]:
            out.append(f"adds {self.inputs[0]!r} to itself; an add takes two different tensors "
                       f"(scale one tensor with a requant multiplier instead)")
        if not out and not numerics.requant_fits(self.sum_bound(in_types), 1, self.bias):
            out.append(f"a*mult_a + b*mult_b + bias can exceed 2^62 (bias {self.bias})")
        return out


@dataclass(frozen=True, eq=False)
class MaxPool(Node):
    kernel: int = 2
    stride: int = 2
    padding: int = 0
    op: ClassVar[str] = "maxpool"

    def infer_shape(self, in_types):
        x = in_types[0]
        if len(x.shape) != 3:
            raise ValueError(f"input must be (C, H, W), got {x.shape}")
        if self.kernel < 1 or self.stride < 1 or not 0 <= self.padding < self.kernel:
            raise ValueError("need kernel >= 1, stride >= 1, 0 <= padding < kernel")
        h, w = (_conv_out(x.shape[i], self.kernel, self.stride, self.padding) for i in (1, 2))
        if h < 1 or w < 1:
            raise ValueError(f"pool window {self.kernel} larger than padded input {x.shape[1:]}")
        return (x.shape[0], h, w)

    def problems(self, in_types):
        x = in_types[0]
        if (x.bits, x.encoding) != (self.out.bits, self.out.encoding):
            return [f"output {self.out.bits}-bit {self.out.encoding.label} differs from input "
                    f"{x.bits}-bit {x.encoding.label}"]
        return []


@dataclass(frozen=True, eq=False)
class GlobalAvgPool(Node):
    requant: Requant = None
    op: ClassVar[str] = "globalavgpool"

    def infer_shape(self, in_types):
        x = in_types[0]
        if len(x.shape) != 3:
            raise ValueError(f"input must be (C, H, W), got {x.shape}")
        return (x.shape[0], 1, 1)

    def problems(self, in_types):
        x = in_types[0]
        out = self.requant.problems(x.shape[0])
        lo, hi = x.range
        bound = max(-lo, hi) * x.shape[1] * x.shape[2]
        if not out and not numerics.requant_fits(bound, self.requant.multiplier, self.requant.bias):
            out.append("sum*multiplier+bias can exceed 2^62")
        return out


@dataclass(frozen=True, eq=False)
class Flatten(Node):
    op: ClassVar[str] = "flatten"

    def infer_shape(self, in_types):
        return (in_types[0].size,)

    def problems(self, in_types):
        x = in_types[0]
        if (x.bits, x.encoding) != (self.out.bits, self.out.encoding):
            return ["output bits/encoding differ from input"]
        return []


NODE_TYPES: dict[str, type[Node]] = {
    cls.op: cls for cls in (Input, Conv2d, Dense, Add, MaxPool, GlobalAvgPool, Flatten)}
ARITY = {"input": 0, "add": 2}


@dataclass(frozen=True, eq=False)
class Graph:
    """An integer network: nodes in topological order; one `Input` and one output tensor."""

    nodes: tuple[Node, ...]
    output: str
    name: str = "net"

    def __post_init__(self) -> None:
        object.__setattr__(self, "nodes", tuple(self.nodes))

    def __getitem__(self, name: str) -> Node:
        for node in self.nodes:
            if node.name == name:
                return node
        raise KeyError(name)

    @property
    def input(self) -> Input:
        return next(n for n in self.nodes if isinstance(n, Input))

    def types(self) -> dict[str, TensorType]:
        """Type of every tensor by producing node name."""
        return {n.name: n.out for n in self.nodes}

    def problems(self) -> list[str]:
        """Every inconsistency, each prefixed with the node name."""
        out: list[str] = []
        seen: dict[str, TensorType] = {}
        inputs = [n for n in self.nodes if isinstance(n, Input)]
        if len(inputs) != 1:
            out.append(f"graph must have exactly one input node, has {len(inputs)}")
        for node in self.nodes:
            out += [f"{node.name}: {p}" for p in _node_problems(node, seen)]
            seen[node.name] = node.out
        if self.output not in seen:
            out.append(f"output {self.output!r} is not a node of the graph")
        return out

    def verify(self) -> "Graph":
        """Raise `IRError` listing every inconsistency by node name; return self when clean."""
        problems = self.problems()
        if problems:
            raise IRError(f"graph {self.name!r} is inconsistent: " + "; ".join(problems))
        return self


def _node_problems(node: Node, seen: dict[str, TensorType]) -> list[str]:
    if node.name in seen:
        return ["duplicate node name"]
    arity = ARITY.get(node.op, 1)
    if len(node.inputs) != arity:
        return [f"takes {arity} inputs, got {len(node.inputs)}"]
    missing = [i for i in node.inputs if i not in seen]
    if missing:
        return [f"input {missing[0]!r} is not produced by an earlier node"]
    in_types = [seen[i] for i in node.inputs]
    out = []
    try:
        numerics.value_range(node.out.bits, node.out.encoding)
    except NumericsError as exc:
        return [f"output type: {exc}"]
    if node.out.encoding not in ACT_ENCODINGS:
        out.append(f"output encoding {node.out.encoding.label} is not signed or unsigned")
    try:
        shape = node.infer_shape(in_types)
    except ValueError as exc:
        return out + [str(exc)]
    if tuple(shape) != node.out.shape:
        out.append(f"output shape {node.out.shape} does not match the computed {tuple(shape)}")
    return out + node.problems(in_types)
