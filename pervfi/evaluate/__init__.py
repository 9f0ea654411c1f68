"""Evaluation: any method on the standard VFI benchmarks with the paper's protocol."""
