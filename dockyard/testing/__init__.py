"""Helpers for tests, benchmarks and the demo (no test framework imports here)."""
