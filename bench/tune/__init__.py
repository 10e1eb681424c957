"""``bench tune``: the same, declared tuning budget for every trainable experiment, spent with Optuna.

* :mod:`.space`: the ``tune.space`` of the config as Optuna distributions, and whether values lie inside it;
* :mod:`.trials`: a trial as a unit of a run folder of its own (``<out>/<name>-tune/``): its experiment and
  config, and its objective, read from the held-out scores in its training log;
* :mod:`.study`: one Optuna study per experiment in the run folder's journal file, its sampler;
* :mod:`.tuned_file`: ``tuned.yaml``, written by ``bench tune`` and read by ``bench run --tuned``;
* :mod:`.runner`: rounds of trials (inline or with the local launcher), resumable, then ``tuned.yaml``.

Optuna is an optional extra (``pip install -e ".[tune]"``); nothing here imports it before it is needed.
"""
