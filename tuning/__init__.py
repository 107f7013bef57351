"""Hyperparameter search for AR2 with Keras Tuner (`python -m tuning`); see `tuning.search`."""

import ar2_tf  # noqa: F401  (first: starts TensorFlow quietly, see ar2_tf/quiet.py)
