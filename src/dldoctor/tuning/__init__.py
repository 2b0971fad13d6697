"""Stage 5 of the method: tune hyper-parameters (``dldoctor tune``).

Measure, then judge, then search:

- the learning-rate range test lives with the other stages' code: ``probes.lr_sweep``
  measures it, ``readings.lr`` reads it (a suggestion with a confidence, or "no clear
  minimum"), and the ``lr-range`` check (``checks.tune.lr_range``) memoises both;
- ``space`` reads and validates the spec's ``search_space``; ``trial`` scores one
  configuration with the evaluation stage's short training; ``sampler`` is the
  coarse-to-fine random search (an Optuna sampler); ``search`` runs one worker's
  trials in a study that ``study`` opens in a shared storage; ``summary`` and
  ``outcome`` turn the study into the report, with the gain's uncertainty;
- ``session`` ties them together for the command; ``view``, ``best_file`` and
  ``plot`` show the report.

Optuna is an optional extra (``pip install 'dldoctor[tune]'``), imported only when
a search runs; the range test needs nothing beyond torch.
"""
