"""RTL co-simulation: host-side tile packing, cocotb benches and simulator runners."""
