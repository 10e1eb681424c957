"""The sections of ``bench perf``, one module each; every module's ``measure(report)`` adds its rows.

Kept import-free: :mod:`bench.perf.suite` imports the sections it runs and fixes their order.
"""
