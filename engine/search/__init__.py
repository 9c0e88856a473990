"""Experiments: hyper-parameter and architecture search over a project's ``search`` section,
with Optuna's samplers and pruners; every trial is a normal run folder."""
