"""Benchmark scripts (not tests): `python -m bench.primitives`, `python -m bench.protocol`."""
