"""relight-bench's bottom layer: what every other package may import and which imports none of them.

* :mod:`relight_base.errors`: :class:`~relight_base.errors.BenchError`, the one base the CLI catches,
  and the errors any layer may raise (``ConfigError``, ``OutputError``);
* :mod:`relight_base.atomic`: writing files and folders so a reader never sees half of one;
* :mod:`relight_base.run_folder`: the run-folder layout, written by ``bench`` and read by ``reports``;
* :mod:`relight_base.results`: the results contract: the columns of a results row, their types, units and
  defaults, the schema version, the weights choices and the model tags the rows carry;
* :mod:`relight_base.typed_config`: YAML into typed dataclasses with every problem named (generic; the
  benchmark's schema is ``bench.harness.config``'s, the report section's ``reports.settings``').

The name is distinctive on purpose: generic names such as ``core`` or ``utils`` are
shipped by other distributions and could shadow this one (see docs/architecture.md).
"""
