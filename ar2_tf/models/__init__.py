"""Classifiers to repair: the paper's architectures, loading model files, the checks that a model fits the data,
copies of a model in memory, BatchNorm folding for inference and the check of a model's input scaling."""
