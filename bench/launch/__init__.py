"""Launchers: where a run's experiment x seed units train.

``inline`` is :func:`bench.harness.run.run_benchmark` itself (one after another in this process).  The others
start each unit in a process of its own and finish with one step that times every trained model on one
device and writes the report (:mod:`bench.launch.finish`):

* :mod:`bench.launch.local`: parallel subprocesses on this machine (``--jobs N``), each pinned to its GPUs or
  to its share of the CPU cores;
* :mod:`bench.launch.slurm`: one Slurm job-array element per unit through submitit, requeued on time limits
  and preemption, with the final step as a dependent job.

:mod:`bench.launch.unit_process` is what runs inside a unit's process, :mod:`bench.launch.jobs` asks the
operating system or Slurm whether a unit's process is still alive, and :mod:`bench.launch.status` shows every
unit's state (``bench status``).
"""
