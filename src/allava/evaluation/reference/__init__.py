"""Benchmark scorers that reproduce, edge cases included, the reference evaluation code of each benchmark."""
