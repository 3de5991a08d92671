"""Simulation: the numpy golden model (the single reference) and the cycle-accurate model."""
