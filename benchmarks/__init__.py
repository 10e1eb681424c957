"""Measurement scripts behind docs/performance.md.

Run each from the repository root as a module: ``python -m benchmarks.NAME [args]`` (``--help`` lists its
options).  Performance claims come from these scripts and ``python -m bench perf``, never from unit tests;
tests/test_benchmarks.py only checks, with tiny arguments, that each script still runs.
"""
