"""The names a command's --dataset, --strategy, --tuner and --encoding accept, TensorFlow-free.

Commands build their `--help` and check these flags before importing TensorFlow (a few seconds),
so help and a mistyped flag answer at once. The modules that implement each choice import the
names from here: `ar2_tf.data.sources` loads the datasets, `ar2_tf.runs.distribution` creates
the strategies, `tuning.search` the Keras Tuner tuners, `ar2_tf.data.shards` writes the encodings.
"""

DATASETS = ("demo", "cifar10", "cifar100", "imagenet", "folder")
STRATEGIES = ("auto", "mirrored", "multiworker", "default")
TUNERS = ("random", "bayesian", "hyperband")
ENCODINGS = ("png", "jpeg", "raw")  # precomputed shards: png lossless; jpeg quality 95, ~5x smaller; raw uint8 bytes
