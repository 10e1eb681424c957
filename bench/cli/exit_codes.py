"""Exit statuses of ``python -m bench``: what a script calling the CLI can tell apart."""

EXIT_OK = 0
EXIT_BUG = 1  # an unexpected exception: a bug in the bench
EXIT_INPUT = 2  # bad input (config, data, model name, output folder) or a missing command
EXIT_FAILED_EXPERIMENT = 3  # the run finished but at least one experiment failed
EXIT_INTERRUPTED = 130  # Ctrl-C
