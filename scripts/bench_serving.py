"""Benchmark: the exported serving graph's answer time, BatchNorm folded (what `python -m export` writes)
against the model as it is, side by side in one process.

    python scripts/bench_serving.py              # shared ResNet-20 (CIFAR-10 test images, batch 64 and 1),
                                               # ResNet-50 and MobileNetV2 at 224 px (weights none, batch 16)
    python scripts/bench_serving.py --rounds 20

Each model is wrapped twice (`export.serving_module.ServingModule(fold=True)` and `fold=False`), saved,
reloaded with `tf.saved_model.load` as a server loads it, and its `serving_default` signature is timed on the
same uint8 request alternately in each round, after one warm-up call. The ratio of the two is what to read
(this CPU's speed drifts between runs). Also prints how far the two answers' probabilities are apart.
"""

import argparse
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from ar2_tf.quiet import quiet_start  # noqa: E402

quiet_start()  # TensorFlow's start-up noise off, as the commands do

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from ar2_tf.models import loading  # noqa: E402
from export.serving_module import ServingModule  # noqa: E402
from tests.helpers import with_batchnorm_statistics  # noqa: E402  (random statistics: the fold is no identity)

SHARED = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared")


def served(model, preprocessing, fold, folder, names):
    module = ServingModule(model, names, preprocessing=preprocessing, resize="resize", fold=fold)
    path = tempfile.mkdtemp(dir=folder)
    tf.saved_model.save(module, path, signatures=module.signatures())
    return tf.saved_model.load(path).signatures["serving_default"]


def compare(name, model, preprocessing, images, rounds, folder, names):
    request = tf.constant(images)
    answer = {kind: served(model, preprocessing, kind == "folded", folder, names) for kind in ("as is", "folded")}
    probabilities = {kind: signature(images=request)["probabilities"].numpy() for kind, signature in answer.items()}
    times = {kind: [] for kind in answer}
    for round_ in range(rounds):
        for kind in ("as is", "folded") if round_ % 2 == 0 else ("folded", "as is"):
            start = time.perf_counter()
            answer[kind](images=request)["probabilities"].numpy()
            times[kind].append((time.perf_counter() - start) * 1000)
    ratios = [f / a for f, a in zip(times["folded"], times["as is"])]
    difference = np.abs(probabilities["folded"] - probabilities["as is"]).max()
    print(f"| {name} | {len(images)} | {statistics.median(times['as is']):.1f} | "
          f"{statistics.median(times['folded']):.1f} | {statistics.median(ratios):.2f} ({min(ratios):.2f}-"
          f"{max(ratios):.2f}) | {difference:.1e} |", flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()
    folder = tempfile.mkdtemp()
    names = os.path.join(folder, "class_names.txt")
    with open(names, "w") as file:
        file.write("".join(f"class {i}\n" for i in range(10)))
    print(f"{args.rounds} rounds, medians")
    print("| model | images per request | as is (ms) | folded (ms) | folded / as is (range) | max prob. difference |")
    print("| --- | --- | --- | --- | --- | --- |")
    with np.load(os.path.join(SHARED, "data", "cifar10", "cifar10_exact_official_subset.npz")) as data:
        images = data["x_test"][:64]
    resnet20 = loading.load_model_file(os.path.join(SHARED, "models", "cifar10_resnet20v1.h5"))
    for count in (64, 1):
        compare("shared ResNet-20, 32 px", resnet20, "unit", images[:count], args.rounds, folder, names)
    large = tf.cast(tf.image.resize(images[:16], (224, 224)), tf.uint8).numpy()
    for build in (keras.applications.ResNet50, keras.applications.MobileNetV2):
        keras.utils.set_random_seed(0)
        model = with_batchnorm_statistics(build(weights=None, classes=10, input_shape=(224, 224, 3)))
        compare(f"{build.__name__}, 224 px", model, "caffe", large, args.rounds, folder, names)


if __name__ == "__main__":
    main()
