"""Compiler: integer IR, lowering to schedules and programs, cost model, bit-width search."""
