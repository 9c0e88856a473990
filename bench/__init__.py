"""Benchmark scripts (not tests): run them as ``python bench/<name>.py``; see bench/RESULTS.md."""
