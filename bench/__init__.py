"""Benchmarks for Theater MSA: `uv run python -m bench` (see docs/benchmarks.md).

Not part of the test suite. Load goes to 127.0.0.1 only and every run is
bounded in duration and request count.
"""
