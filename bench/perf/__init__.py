"""Performance: the ``bench perf`` suite, peak memory, the MBNet reference pass and inference-only speed-ups.

Kept import-free: the harness imports :mod:`bench.perf.fast_inference` (BatchNorm
folding, Winograd) without loading the suite, which itself builds on the harness.
"""
