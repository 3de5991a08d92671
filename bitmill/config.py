"""`AccelConfig`: the one description of an accelerator instance, loaded from YAML.

Every field is validated on construction; a bad value raises `ConfigError` naming the key,
the value and what is allowed. Derived values are properties.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

import yaml

from bitmill.errors import ConfigError
from bitmill.precision import MAX_RUNTIME_BITS, check_runtime_bits

PE_FAMILIES = ("bitserial", "bitparallel")
BOARDS = ("none", "ulx3s-85f", "orangecrab-85f", "icebreaker", "arty-a7-35", "pynq-z2")
SHIPPED_PACKAGE = "bitmill.configs"      # package data: accel/<name>.yaml
YAML_SUFFIXES = (".yaml", ".yml")
MAX_BEAT_BYTES = 16      # widest memory beat: one 16-byte instruction per beat at most
MAX_ACT_READ_BYTES = 64  # widest activation buffer word (512 bits)


def _shipped_dir() -> Traversable:
    return resources.files(SHIPPED_PACKAGE) / "accel"


def shipped_names() -> tuple[str, ...]:
    """Names of the accelerator configurations shipped with bitmill, sorted."""
    return tuple(sorted(entry.name[:-len(".yaml")] for entry in _shipped_dir().iterdir()
                        if entry.name.endswith(".yaml")))


def _is_path(name_or_path: str | Path) -> bool:
    if isinstance(name_or_path, Path):
        return True
    text = str(name_or_path)
    separators = [s for s in (os.sep, os.altsep, "/") if s]
    return (Path(text).is_file() or text.endswith(YAML_SUFFIXES)
            or any(s in text for s in separators))


def _check_int(key: str, value: Any, lo: int, hi: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{key} must be an integer in {lo}..{hi}, not {value!r}")
    if not lo <= value <= hi:
        raise ConfigError(f"{key} must be an integer in {lo}..{hi}, not {value}")


def _check_choice(key: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigError(f"{key} must be one of {', '.join(choices)}, not {value!r}")


def _check_bit_range(key: str, value: Any) -> None:
    if not (isinstance(value, (tuple, list)) and len(value) == 2):
        raise ConfigError(f"{key} must be a pair [min, max] of bit-widths in 1..{MAX_RUNTIME_BITS}, not {value!r}")
    for bound in value:
        check_runtime_bits(key, bound, ConfigError)
    if value[0] > value[1]:
        raise ConfigError(f"{key} must have min <= max, not {list(value)}")


@dataclass(frozen=True)
class AccelConfig:
    """An accelerator instance: MAC array, precision range, buffers, memory, clock and board."""

    name: str
    rows: int                    # PE rows: output channels (weights) along this axis
    cols: int                    # PE columns: output pixels (activations) along this axis
    lanes: int                   # K: dot-product lanes per PE per cycle (per bit-plane)
    pe_family: str               # "bitserial" or "bitparallel"
    weight_bits: tuple[int, int]  # supported weight bit-widths, inclusive
    act_bits: tuple[int, int]    # supported activation bit-widths, inclusive
    acc_bits: int                # accumulator width in bits
    weight_buffer_bytes: int
    act_buffer_bytes: int
    out_buffer_bytes: int
    mem_bytes_per_cycle: int     # external memory bandwidth
    mem_latency: int             # cycles from request to first byte
    clock_mhz: float
    board: str = "none"
    max_feature_size: int = 4095  # largest feature-map height or width (pixels) a program uses
    max_channels: int = 8191     # largest channel (or dense feature) count a program uses
    queue_depth: int = 1024      # instructions each queue's on-chip instruction memory holds
    k_passes: int = 1            # most partial-sum passes of a GEMM tile (1, 2, 4 or 8)
    act_read_bytes: int = 0      # bytes of the activation buffer's GEMM read port (0: mem_bytes_per_cycle)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ConfigError(f"name must be a non-empty string, not {self.name!r}")
        _check_int("rows", self.rows, 1, 256)
        _check_int("cols", self.cols, 1, 256)
        _check_int("lanes", self.lanes, 1, 1024)
        _check_choice("pe_family", self.pe_family, PE_FAMILIES)
        _check_bit_range("weight_bits", self.weight_bits)
        _check_bit_range("act_bits", self.act_bits)
        object.__setattr__(self, "weight_bits", tuple(self.weight_bits))
        object.__setattr__(self, "act_bits", tuple(self.act_bits))
        _check_int("acc_bits", self.acc_bits, 8, 64)
        for key in ("weight_buffer_bytes", "act_buffer_bytes", "out_buffer_bytes"):
            _check_int(key, getattr(self, key), 1, 1 << 30)
        _check_int("mem_bytes_per_cycle", self.mem_bytes_per_cycle, 1, MAX_BEAT_BYTES)
        if self.mem_bytes_per_cycle & (self.mem_bytes_per_cycle - 1):
            raise ConfigError(f"mem_bytes_per_cycle must be a power of two in 1..{MAX_BEAT_BYTES} "
                              f"(the memory port's data bytes), not {self.mem_bytes_per_cycle}")
        _check_int("mem_latency", self.mem_latency, 1, 100_000)
        clock = self.clock_mhz
        if isinstance(clock, bool) or not isinstance(clock, (int, float)) or not 0 < clock <= 2000:
            raise ConfigError(f"clock_mhz must be a number in (0, 2000], not {clock!r}")
        object.__setattr__(self, "clock_mhz", float(clock))
        _check_choice("board", self.board, BOARDS)
        _check_int("max_feature_size", self.max_feature_size, 1, 65535)
        _check_int("max_channels", self.max_channels, 1, 65535)
        _check_int("queue_depth", self.queue_depth, 1, 16384)
        if self.k_passes not in (1, 2, 4, 8) or isinstance(self.k_passes, bool):
            raise ConfigError(f"k_passes must be 1, 2, 4 or 8 (partial-sum passes per tile), "
                              f"not {self.k_passes!r}")
        a = self.act_read_bytes
        if (isinstance(a, bool) or not isinstance(a, int)
                or a and (a & (a - 1) or not self.mem_bytes_per_cycle <= a <= MAX_ACT_READ_BYTES)):
            raise ConfigError(f"act_read_bytes must be 0 (the memory beat) or a power of two in "
                              f"{self.mem_bytes_per_cycle}..{MAX_ACT_READ_BYTES} (mem_bytes_per_cycle.."
                              f"{MAX_ACT_READ_BYTES}), not {a!r}")
        if (self.act_buffer_bytes // 2) % self.act_word_bytes:
            raise ConfigError(f"act_buffer_bytes must hold two slots of whole {self.act_word_bytes}-byte "
                              f"words (act_read_bytes), not {self.act_buffer_bytes}")

    # ---- derived values -------------------------------------------------------------------
    @property
    def act_word_bytes(self) -> int:
        """Bytes of an activation buffer word: what the GEMM unit's activation stager reads per
        cycle (``act_read_bytes``, or the memory beat when that is 0)."""
        return self.act_read_bytes or self.mem_bytes_per_cycle

    @property
    def pe_count(self) -> int:
        """Number of processing elements in the array."""
        return self.rows * self.cols

    @property
    def macs_per_cycle_8bit(self) -> int:
        """Peak 8-bit x 8-bit multiply-accumulates per cycle of the bit-parallel equivalent."""
        return self.rows * self.cols * self.lanes

    def supports(self, w_bits: int, a_bits: int) -> bool:
        """Whether a layer with these weight and activation bit-widths runs on this array."""
        return (self.weight_bits[0] <= w_bits <= self.weight_bits[1]
                and self.act_bits[0] <= a_bits <= self.act_bits[1])

    # ---- serialisation --------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Plain-data form, as written to YAML (tuples become lists)."""
        out = dataclasses.asdict(self)
        if not self.act_read_bytes:          # unused: the form (and every hash of it) stays as before
            del out["act_read_bytes"]
        out["weight_bits"] = list(self.weight_bits)
        out["act_bits"] = list(self.act_bits)
        return out

    @classmethod
    def from_dict(cls, data: Any, source: str = "config") -> "AccelConfig":
        """Build from a mapping; unknown or missing keys raise `ConfigError`."""
        if not isinstance(data, dict):
            raise ConfigError(f"{source}: expected a mapping of keys to values, got {type(data).__name__}")
        fields = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(data) - set(fields), key=str)
        if unknown:
            raise ConfigError(f"{source}: unknown key {unknown[0]!r}; allowed keys: {', '.join(fields)}")
        required = [f.name for f in dataclasses.fields(cls)
                    if f.default is dataclasses.MISSING]
        missing = [k for k in required if k not in data]
        if missing:
            raise ConfigError(f"{source}: missing key {missing[0]!r}")
        try:
            return cls(**data)
        except ConfigError as exc:
            raise ConfigError(f"{source}: {exc}") from None

    @classmethod
    def from_yaml(cls, text: str, source: str = "config") -> "AccelConfig":
        """Build from YAML text; ``source`` names it in error messages."""
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ConfigError(f"{source}: not valid YAML: {str(exc).splitlines()[0]}") from None
        return cls.from_dict(data, source=source)

    @classmethod
    def load(cls, path: str | Path) -> "AccelConfig":
        """Read a YAML file (``configs/accel/*.yaml``)."""
        path = Path(path)
        try:
            text = path.read_text()
        except OSError as exc:
            raise ConfigError(f"cannot read accelerator config {path}: {exc.strerror}") from None
        except UnicodeDecodeError as exc:
            raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start}); an accelerator config is "
                              f"a YAML file") from None
        return cls.from_yaml(text, source=str(path))

    @classmethod
    def resolve(cls, name_or_path: str | Path) -> "AccelConfig":
        """Load a configuration given by path or by the name of a shipped one (`shipped_names`).

        A `Path`, an existing file, or a value that ends in ``.yaml``/``.yml`` or contains a path
        separator is a path; anything else is a name, looked up as
        ``bitmill.configs/accel/<name>.yaml``. An unknown name raises `ConfigError` listing the
        shipped names."""
        if _is_path(name_or_path):
            return cls.load(name_or_path)
        name = str(name_or_path)
        resource = _shipped_dir() / f"{name}.yaml"
        if not resource.is_file():
            raise ConfigError(f"no shipped accelerator config named {name!r}; shipped configs: "
                              f"{', '.join(shipped_names())} (or give the path of a YAML file)")
        return cls.from_yaml(resource.read_text(), source=str(resource))

    def dump(self, path: str | Path) -> None:
        """Write as YAML, atomically."""
        from bitmill.fileio import atomic_write_text

        atomic_write_text(Path(path), yaml.safe_dump(self.to_dict(), sort_keys=False))
