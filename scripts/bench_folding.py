"""Benchmark: inference with BatchNorm folded into the convolutions against the model as it is.

    python scripts/bench_folding.py              # shared ResNet-20 (1,017 CIFAR-10 test images), ResNet-50 and
                                               # MobileNetV2 at 224 px (weights none, 64 images)
    python scripts/bench_folding.py --rounds 5

Both run as the evaluation runs them (`ErrorCounter`: one compiled forward pass + error count per batch of
uint8 images, `fold=True` or not), alternately in each round, on the same batches: the ratio of the two is
what to read (this CPU's speed drifts between runs). Also prints how far the folded model's probabilities
are from the model's and whether every top-1 prediction agrees.
"""

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from ar2_tf.quiet import quiet_start  # noqa: E402

quiet_start()  # TensorFlow's start-up noise off, as the commands do

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from ar2_tf.evaluation.multi_model import ErrorCounter  # noqa: E402
from ar2_tf.models import loading  # noqa: E402
from ar2_tf.models.batchnorm_folding import fold_batchnorm  # noqa: E402
from tests.helpers import with_batchnorm_statistics  # noqa: E402  (random statistics: the fold is no identity)

SHARED = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared")


def compare(name, classifier, images, labels, batch_size, rounds):
    batches = [(tf.constant(images[i:i + batch_size]), tf.constant(labels[i:i + batch_size]))
               for i in range(0, len(labels), batch_size)]
    counters = {"as is": ErrorCounter(classifier, "unit"), "folded": ErrorCounter(classifier, "unit", fold=True)}
    for counter in counters.values():  # trace for the full and the last batch size
        for x, y in batches[:1] + batches[-1:]:
            counter(x, y)
    times = {key: [] for key in counters}
    for _ in range(rounds):
        for key, counter in counters.items():
            start = time.perf_counter()
            for x, y in batches:
                int(counter(x, y)[0])
            times[key].append((time.perf_counter() - start) / len(labels) * 1000)
    x = images[:batch_size].astype(np.float32) / 255.0
    expected, got = classifier(x, training=False).numpy(), fold_batchnorm(classifier)(x, training=False).numpy()
    ratios = [f / a for f, a in zip(times["folded"], times["as is"])]
    print(f"| {name} | {len(labels)} | " + " | ".join(" / ".join(f"{t:.2f}" for t in times[k]) for k in counters)
          + f" | {min(ratios):.2f}-{max(ratios):.2f} | {np.abs(got - expected).max():.1e} | "
          f"{'yes' if (got.argmax(-1) == expected.argmax(-1)).all() else 'NO'} |", flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print("| model | images | as is, ms/image per round | folded, ms/image per round | folded / as is "
          "| max prob. difference | same top-1 |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    with np.load(os.path.join(SHARED, "data", "cifar10", "cifar10_exact_official_subset.npz")) as data:
        images, labels = data["x_test"], data["y_test"].reshape(-1).astype(np.int64)
    resnet20 = loading.load_model_file(os.path.join(SHARED, "models", "cifar10_resnet20v1.h5"))
    compare("shared ResNet-20, 32 px, batch 256", resnet20, images, labels, 256, args.rounds)
    large = tf.cast(tf.image.resize(images[:64], (224, 224)), tf.uint8).numpy()
    for build in (keras.applications.ResNet50, keras.applications.MobileNetV2):
        keras.utils.set_random_seed(0)
        classifier = with_batchnorm_statistics(build(weights=None, classes=10, input_shape=(224, 224, 3)))
        compare(f"{build.__name__}, 224 px, batch 32", classifier, large, labels[:64] % 10, 32, args.rounds)


if __name__ == "__main__":
    main()
