"""Error types of bitmill. Every user-facing error is a `BitmillError`.

The CLI prints a `BitmillError` as one line, ``error: <message>``, and exits with status 2.
Messages say what was wrong and what would be right.
"""

from __future__ import annotations


class BitmillError(Exception):
    """Base of every error that is the user's input rather than a bug."""


class ConfigError(BitmillError, ValueError):
    """A configuration value is unknown, of the wrong type or out of range."""


class NumericsError(BitmillError, ValueError):
    """A value cannot be represented on the requested integer grid."""


class IRError(BitmillError):
    """A network graph is inconsistent, or a saved graph cannot be read."""


class LoweringError(BitmillError):
    """A layer cannot be mapped onto the configured accelerator."""


class SimMismatch(BitmillError):
    """A computed tensor differs from the golden model's."""

    def __init__(self, layer: str, index: tuple[int, ...], expected: int, actual: int):
        self.layer, self.index, self.expected, self.actual = layer, index, expected, actual
        super().__init__(
            f"{layer}: first difference at index {index}: expected {expected}, got {actual}"
        )
