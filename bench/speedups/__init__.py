"""Speed-ups the harness applies, below it: they import nothing of the harness, the perf suite or the CLI.

* :mod:`~bench.speedups.fast_inference`: ``prepare_for_inference`` (BatchNorm folding, channels_last, Winograd
  convolutions on CPU, optional autocast and ``torch.compile``), what evaluation and timing run;
* :mod:`~bench.speedups.winograd`: Winograd F(4x4,3x3) convolutions;
* :mod:`~bench.speedups.small_map_conv`: wide 3x3 convolutions on tiny maps as one matrix product, in training;
* :mod:`~bench.speedups.allocator`: glibc's allocator kept steady while training and timing (no page faults
  per pass).

``bench.perf`` (the suite) measures them; ``docs/performance.md`` has the figures.
"""
