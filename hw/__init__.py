"""Hardware: Amaranth generators for the variable-precision MAC arrays and the accelerator."""
