"""Benchmarks run by `make bench` (not by `make test`): figures, not pass/fail timings."""
