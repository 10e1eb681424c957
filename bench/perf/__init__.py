"""Performance: the ``bench perf`` suite, peak memory and the MBNet reference pass (above the harness).

* ``suite``        runs the sections, relates rates to the matmul yardstick, targets, table and CSV
* ``sections/``    one module per section (machine, inference, reference, training, training_step, data, metrics)
* ``report``       the suite's options and measured rows; ``measure`` its timing helpers;
  ``breakdown`` the time per part of an adapter; ``memory`` peak RSS / CUDA memory;
  ``mbnet_reference`` the official MBNet formulation raced against ours

The speed-ups it measures live below the harness, in :mod:`bench.speedups`.
"""
