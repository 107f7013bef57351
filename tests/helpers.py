"""Shared test helpers: paths of the real offline data, tiny models and runs, and round-trip checks.

Test modules import from here, never from each other. Paths are anchored to
this file, so the suite finds ../shared wherever pytest is started.
"""

import glob
import json
import os
import re
import struct

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.join(ROOT, "..", "shared")
RESNET20 = os.path.join(SHARED, "models", "cifar10_resnet20v1.h5")
CIFAR10_EXACT = os.path.join(SHARED, "data", "cifar10", "cifar10_exact_official_subset.npz")
CIFAR10_JPEG = os.path.join(SHARED, "data", "cifar10", "cifar10_jpeg_bytes_official_order.npz")
needs_cifar10 = pytest.mark.skipif(not os.path.exists(CIFAR10_EXACT),
                                   reason=f"needs the real CIFAR-10 images in {CIFAR10_EXACT}")
needs_resnet20 = pytest.mark.skipif(not os.path.exists(RESNET20), reason=f"needs the shared ResNet-20 {RESNET20}")
ZOO_RESNET8 = os.path.join(SHARED, "models", "zoo", "resnet8_raw255.h5")  # third-party, raw 0-255 input
needs_zoo = pytest.mark.skipif(not os.path.exists(ZOO_RESNET8), reason=f"needs the third-party models {ZOO_RESNET8}")


def console_scripts() -> dict:
    """The installed command names (pyproject.toml [project.scripts]) -> their module."""
    with open(os.path.join(ROOT, "pyproject.toml")) as file:  # no tomllib: Python 3.10 is supported
        section = file.read().split("[project.scripts]")[1].split("\n[")[0]
    return dict(re.findall(r'^(ar2-[a-z-]+) = "([\w.]+):\w+"', section, re.M))


# `python -m ar2_tf.train` flags of a run that takes seconds on the demo data.
TINY_TRAIN_FLAGS = ["--dataset", "demo", "--train-size", "96", "--test-size", "48", "--batch-size", "32",
        "--pretrain-epochs", "1", "--preset", "tiny", "--verbose", "0"]


# --- Models -----------------------------------------------------------------------------------------------------

def tiny_classifier(num_classes=4, input_shape=(16, 16, 3), head="gap", seed=0):
    """A small conv net ending in one of the heads real models have:

    - "gap": GlobalAveragePooling2D + Dense softmax (ResNet, EfficientNet, ...);
    - "avgpool": AveragePooling2D over the map + Flatten + Dense + separate softmax Activation;
    - "conv": MobileNet's linear head, GAP(keepdims) + Dropout + 1x1 Conv2D + Reshape + softmax Activation;
    - "mlp": a non-linear head, GAP + Dense ReLU + Dense softmax (MobileNetV3-like);
    - "layernorm": GAP + LayerNormalization + Dense softmax (ConvNeXt-like);
    - "flatten": MaxPooling2D + Flatten + Dense ReLU + Dense softmax (VGG-like).
    """
    import keras

    keras.utils.set_random_seed(seed)
    inputs = keras.Input(input_shape)
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="conv1")(inputs)
    x = keras.layers.BatchNormalization(name="bn1")(x)
    x = keras.layers.Conv2D(12, 3, strides=2, padding="same", activation="relu", name="features")(x)
    layers = keras.layers
    if head == "gap":
        outputs = layers.Dense(num_classes, activation="softmax", name="classes")(
            layers.GlobalAveragePooling2D(name="pool")(x))
    elif head == "avgpool":
        x = layers.Flatten(name="flatten")(layers.AveragePooling2D(x.shape[1], name="pool")(x))
        outputs = layers.Activation("softmax", name="softmax")(layers.Dense(num_classes, name="classes")(x))
    elif head == "conv":
        x = layers.Dropout(0.5, name="dropout")(layers.GlobalAveragePooling2D(keepdims=True, name="pool")(x))
        x = layers.Reshape((num_classes,), name="reshape")(layers.Conv2D(num_classes, 1, name="classes")(x))
        outputs = layers.Activation("softmax", name="softmax")(x)
    elif head == "mlp":
        x = layers.Dense(16, activation="relu", name="hidden")(layers.GlobalAveragePooling2D(name="pool")(x))
        outputs = layers.Dense(num_classes, activation="softmax", name="classes")(x)
    elif head == "layernorm":
        x = layers.LayerNormalization(name="norm")(layers.GlobalAveragePooling2D(name="pool")(x))
        outputs = layers.Dense(num_classes, activation="softmax", name="classes")(x)
    else:  # "flatten"
        x = layers.Flatten(name="flatten")(layers.MaxPooling2D(2, name="pool")(x))
        x = layers.Dense(16, activation="relu", name="hidden")(x)
        outputs = layers.Dense(num_classes, activation="softmax", name="classes")(x)
    return keras.Model(inputs, outputs)


def colour_class_images(count, size=16, classes=4, seed=0):
    """(uint8 [count, size, size, 3] images, int64 labels): noise whose brightest channel is the class (class 3 and
    above: none), a set a tiny classifier learns in a few epochs."""
    rng = np.random.default_rng(seed)
    labels = np.arange(count) % classes
    x = rng.integers(0, 150, (count, size, size, 3))
    for channel in range(3):
        x[labels == channel, ..., channel] += 100
    return x.astype(np.uint8), labels.astype(np.int64)


def colour_class_classifier(data, epochs, batch_size, seed=1):
    """A `tiny_classifier` (GAP + Dense head) fitted on `colour_class_images` data seen as x/255: right on many
    clean images, less so on corrupted ones."""
    classifier = tiny_classifier(4, data[0].shape[1:], seed=seed)
    classifier.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    classifier.fit(data[0] / 255.0, data[1], epochs=epochs, batch_size=batch_size, verbose=0)
    return classifier


def frozen_base_classifier(num_classes=6, input_shape=(32, 32, 3)):
    """Transfer learning's usual model: `tiny_classifier`'s convolutions as a base saved with trainable=False,
    under a new global-pooling + Dense head (only the head trains)."""
    import keras

    classifier = tiny_classifier(num_classes, input_shape)
    base = keras.Model(classifier.inputs, classifier.get_layer("features").output, name="base")
    base.trainable = False
    return keras.Sequential([keras.Input(input_shape), base, keras.layers.GlobalAveragePooling2D(name="pool"),
                             keras.layers.Dense(num_classes, activation="softmax", name="classes")])


def with_batchnorm_statistics(model, seed=0):
    """Random BatchNorm statistics and affine weights in every layer, nested models included: a fresh layer's
    inference map is the identity, under which a wrong BatchNorm fold would go unnoticed."""
    import keras

    rng = np.random.default_rng(seed)
    layers = list(model.layers)
    while layers:
        layer = layers.pop()
        if isinstance(layer, keras.Model):
            layers.extend(layer.layers)
        elif isinstance(layer, keras.layers.BatchNormalization):
            channels = layer.moving_mean.shape[0]
            layer.moving_mean.assign(rng.normal(0, 0.5, channels))
            layer.moving_variance.assign(rng.uniform(0.3, 3.0, channels))
            if layer.gamma is not None:
                layer.gamma.assign(rng.normal(1, 0.5, channels))
            if layer.beta is not None:
                layer.beta.assign(rng.normal(0, 0.5, channels))
    return model


def trained_tiny_classifier(seed, epochs=4):
    """A 2-conv + GAP + Dense demo classifier trained for seconds: its errors move with the corruptions
    (an untrained net predicts one class for every input, which would hide evaluation bugs)."""
    import keras

    from ar2_tf.data.demo import load_demo

    keras.utils.set_random_seed(seed)
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu")(inputs)
    x = keras.layers.Conv2D(16, 3, strides=2, padding="same", activation="relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, keras.layers.Dense(6, activation="softmax")(x))
    images, labels, _, _ = load_demo(train_size=600, test_size=10, seed=seed + 1)
    model.compile(keras.optimizers.Adam(3e-3), "sparse_categorical_crossentropy")
    model.fit(images / 255.0, labels, epochs=epochs, batch_size=32, verbose=0)
    return model


def assert_keras_round_trip(model, path, custom_objects, x, **attributes):
    """Saves `model` to a .keras file, reloads it and checks `attributes` and the outputs on `x`; returns it."""
    import keras

    model.save(path)
    loaded = keras.saving.load_model(path, custom_objects=custom_objects, compile=False)
    assert {name: getattr(loaded, name) for name in attributes} == attributes
    np.testing.assert_allclose(loaded(x).numpy(), model(x).numpy(), rtol=1e-5)
    return loaded


# --- AR2 pieces ---------------------------------------------------------------------------------------------------

def manual_cams(features, kernel, classes):
    """Σ_k w_k^c f_k(x), one image and one class at a time."""
    batch, height, width, channels = features.shape
    out = np.zeros((batch, classes.shape[1], height, width))
    for b in range(batch):
        for j, c in enumerate(classes[b]):
            for k in range(channels):
                out[b, j] += kernel[k, c] * features[b, :, :, k]
    return out


def repair_batches(count=4, batch=8, seed=0):
    """((clean, corrupted), labels) batches of random 16x16 images for `tiny_classifier`."""
    import tensorflow as tf

    rng = np.random.default_rng(seed)
    clean = rng.uniform(size=(count * batch, 16, 16, 3)).astype(np.float32)
    corrupted = np.clip(clean + rng.normal(0, 0.3, clean.shape), 0, 1).astype(np.float32)
    labels = rng.integers(0, 4, count * batch)
    return tf.data.Dataset.from_tensor_slices(((clean, corrupted), labels)).batch(batch)


def tiny_repair_model(**kwargs):
    """A compiled `RepairModel` around `tiny_classifier` (k=2, SGD 0.1)."""
    import keras

    from ar2_tf.method.repair_model import RepairModel

    model = RepairModel(tiny_classifier(), k=2, **kwargs)
    model.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9))
    return model


# --- Run folders ----------------------------------------------------------------------------------------------------

def scalars(run_dir):
    """TensorBoard scalars of a run's `logs/train` as {tag: [values by step]}."""
    import tensorflow as tf

    values = {}
    for path in sorted(glob.glob(os.path.join(run_dir, "logs", "train", "events.*"))):
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                values.setdefault(value.tag, []).append(float(tf.make_ndarray(value.tensor)))
    return values


RUN_CONFIG = {"dataset": "cifar10", "corruption": "gaussian_noise", "method": "ar2", "severity": 3, "seed": 0,
              "data_dir": None, "image_size": None, "feature_layer": None, "dense_layer": None}


def write_run(folder, model, class_names=None, preprocessing="unit", **config):
    """A finished run folder as python -m ar2_tf.train writes it: model.keras and report.json."""
    os.makedirs(folder, exist_ok=True)
    model.save(os.path.join(folder, "model.keras"))
    classes = model.outputs[0].shape[-1]
    report = {"config": {**RUN_CONFIG, **config}, "preprocessing": preprocessing,
              "class_names": list(class_names or [f"class_{i}" for i in range(classes)]),
              "input_shape": list(model.inputs[0].shape[1:]), "before": {}, "after": {}}
    with open(os.path.join(folder, "report.json"), "w") as file:
        json.dump(report, file)
    return str(folder)


# --- Reports and figures ----------------------------------------------------------------------------------------------

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_size(path):
    """(width, height) from the PNG's IHDR chunk, after checking the signature."""
    with open(path, "rb") as file:
        head = file.read(24)
    assert head[:8] == PNG_SIGNATURE and head[12:16] == b"IHDR", f"{path} is not a PNG"
    return struct.unpack(">II", head[16:24])


def pixels(figsize, dpi):
    """The pixel size matplotlib saves a figure of `figsize` inches at `dpi` with."""
    return round(figsize[0] * dpi), round(figsize[1] * dpi)


def page_links(page):
    """Every link and image target of a Markdown page, in order."""
    import re

    with open(page, encoding="utf-8") as file:
        return re.findall(r"\]\(([^)\s]+)\)", file.read())


def markdown_rows(page, first_cell):
    """The cells after the first of every Markdown table row of `page` (headers left out) whose first cell is
    `first_cell`."""
    with open(page, encoding="utf-8") as file:
        lines = file.read().splitlines()
    rows = []
    for line, following in zip(lines, lines[1:] + [""]):
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if line.startswith("|") and cells[0] == first_cell and not following.startswith("| ---"):
            rows.append(cells[1:])
    return rows


# --- Bytes in the official CIFAR files' format -----------------------------------------------------------------------
# The official CIFAR batches were written by Python 2 cPickle, protocol 2: `str` values are SHORT_BINSTRING /
# BINSTRING opcodes and arrays are spelled `numpy.core.multiarray._reconstruct`. Python 3 cannot write that, so
# `py2_pickle` writes the opcodes itself (a dict of bytes, ints, lists and uint8 arrays is all CIFAR needs).

def _py2_value(value) -> bytes:
    if isinstance(value, bytes):
        if len(value) < 256:
            return b"U" + bytes([len(value)]) + value  # SHORT_BINSTRING
        return b"T" + struct.pack("<i", len(value)) + value  # BINSTRING
    if isinstance(value, int):
        if 0 <= value < 256:
            return b"K" + bytes([value])
        if 0 <= value < 65536:
            return b"M" + struct.pack("<H", value)
        return b"J" + struct.pack("<i", value)
    if isinstance(value, list):
        return b"](" + b"".join(_py2_value(item) for item in value) + b"e"
    if isinstance(value, dict):
        return b"}(" + b"".join(_py2_value(k) + _py2_value(v) for k, v in value.items()) + b"u"
    if isinstance(value, np.ndarray):
        assert value.dtype == np.uint8 and value.ndim in (1, 2)
        shape = b"".join(_py2_value(n) for n in value.shape) + (b"\x85" if value.ndim == 1 else b"\x86")
        dtype = (b"cnumpy\ndtype\nU\x02u1K\x00K\x01\x87R"
                 b"(K\x03U\x01|NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb")
        return (b"cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\nK\x00\x85U\x01b\x87R"
                b"(K\x01" + shape + dtype + b"\x89" + _py2_value(value.tobytes()) + b"tb")
    raise TypeError(type(value))


def py2_pickle(fields: dict) -> bytes:
    """A dict pickled as Python 2 cPickle (protocol 2) wrote the official CIFAR files."""
    return b"\x80\x02" + _py2_value(fields) + b"."
