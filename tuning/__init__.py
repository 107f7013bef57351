"""Hyperparameter search for AR2 with Keras Tuner (`python -m tuning`); see `tuning.search`."""

import ar2_tf  # noqa: F401  (first: notes a command's launch, see ar2_tf/quiet.py)
