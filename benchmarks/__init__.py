"""Benchmarks: `make bench` runs them all; each prints a table and writes it into BENCHMARKS.md."""
