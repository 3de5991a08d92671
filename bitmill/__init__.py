"""bitmill: mixed-precision quantized networks on runtime-variable-precision accelerators."""

__version__ = "0.1.0"
