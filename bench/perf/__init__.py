"""Performance: the ``bench perf`` suite, peak memory, the MBNet reference pass and inference-only speed-ups.

* ``suite``        runs the sections, relates rates to the matmul yardstick, targets, table and CSV
* ``sections/``    one module per section (machine, inference, reference, training, data, metrics)
* ``report``       the suite's options and measured rows; ``measure`` its timing helpers;
  ``breakdown`` the time per part of an adapter; ``memory`` peak RSS / CUDA memory;
  ``mbnet_reference`` the official MBNet formulation raced against ours
* ``fast_inference``, ``winograd``  the inference speed-ups the harness uses

Kept import-free: the harness imports :mod:`bench.perf.fast_inference` (BatchNorm
folding, Winograd) without loading the suite, which itself builds on the harness.
"""
