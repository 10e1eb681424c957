"""relight-bench's bottom layer: what every other package may import and which imports none of them.

* :mod:`relight_base.errors`: :class:`~relight_base.errors.BenchError`, the one base the CLI catches,
  and the errors any layer may raise (``ConfigError``, ``OutputError``);
* :mod:`relight_base.atomic`: writing files and folders so a reader never sees half of one;
* :mod:`relight_base.run_folder`: the run-folder layout, written by ``bench`` and read by ``reports``.

The name is distinctive on purpose: generic names such as ``core`` or ``utils`` are
shipped by other distributions and could shadow this one (see docs/architecture.md).
"""
