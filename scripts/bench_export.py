"""Benchmark: exporting a model for TF Serving, against Keras' own export, side by side in one process.

    python scripts/bench_export.py                    # keras.applications ResNet50 (weights=None) at 224 px
    python scripts/bench_export.py --model resnet20   # the CIFAR ResNet-20 architecture at 32 px

Two SavedModels of the same model, written in alternating rounds:

- ours: `export.serving_module.ServingModule` (three signatures: uint8 images of any size, resized and
  preprocessed in the graph; preprocessed inputs; the CAM), saved as `python -m export` saves it;
- keras: `model.export(path)` (one `serve` signature on preprocessed inputs).

Prints, per SavedModel, the median over rounds of the time to write it, the size of `saved_model.pb`
(the graphs; the weights are the same) and the time to load it and answer one request, then ours
relative to Keras'.
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

from ar2_tf.models.architectures import build_model  # noqa: E402
from export.serving_module import ServingModule  # noqa: E402


def build(name):
    keras.utils.set_random_seed(0)
    if name == "resnet50":
        return keras.applications.ResNet50(weights=None, classes=10, input_shape=(224, 224, 3)), "caffe", 224
    return build_model(name, 10, (32, 32, 3)), "unit", 32


def ours(model, preprocessing, path, names):
    module = ServingModule(model, names, preprocessing=preprocessing, resize="resize")
    tf.saved_model.save(module, path, signatures=module.signatures())


def first_answer(path, kind, side):
    loaded = tf.saved_model.load(path)
    images = np.zeros((1, side, side, 3), np.uint8)
    if kind == "ours":
        return loaded.signatures["serving_default"](images=tf.constant(images))
    return loaded.serve(tf.constant(images, tf.float32))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="resnet50", help="resnet50 (224 px) or a CIFAR ResNet (resnet20, 32 px)")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    model, preprocessing, side = build(args.model)
    folder = tempfile.mkdtemp()
    names = os.path.join(folder, "class_names.txt")
    with open(names, "w") as file:
        file.write("".join(f"class {i}\n" for i in range(10)))
    results = {"ours": {"save": [], "load": []}, "keras": {"save": [], "load": []}}
    for round_ in range(args.rounds):
        for kind in ("ours", "keras") if round_ % 2 == 0 else ("keras", "ours"):
            path = os.path.join(folder, f"{kind}_{round_}")
            start = time.perf_counter()
            ours(model, preprocessing, path, names) if kind == "ours" else model.export(path, verbose=False)
            results[kind]["save"].append(time.perf_counter() - start)
            results[kind]["size"] = os.path.getsize(os.path.join(path, "saved_model.pb")) / 1e6
            start = time.perf_counter()
            first_answer(path, kind, side)
            results[kind]["load"].append(time.perf_counter() - start)
    print(f"{args.model}, {args.rounds} rounds, medians | save (s) | saved_model.pb (MB) | load + first answer (s)")
    for kind in ("ours", "keras"):
        r = results[kind]
        print(f"{kind:5s} | {statistics.median(r['save']):.2f} | {r['size']:.2f} | {statistics.median(r['load']):.2f}")
    o, k = results["ours"], results["keras"]
    print(f"ours / keras | {statistics.median(o['save']) / statistics.median(k['save']):.2f}x | "
          f"{o['size'] / k['size']:.2f}x | {statistics.median(o['load']) / statistics.median(k['load']):.2f}x")


if __name__ == "__main__":
    main()
