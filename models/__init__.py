"""Models: quantization-aware training in torch and integer export to the compiler IR."""
