"""The harness: config, data preparation, the training loop, evaluation, metrics, losses, timing and run folders.

One module per role; see docs/architecture.md for the data flow
config -> dataset -> loop -> result rows -> report.
"""
