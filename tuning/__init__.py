"""Hyperparameter search for AR2 with Keras Tuner (`python -m tuning`); see `tuning.search`."""
