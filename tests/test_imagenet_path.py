"""The ImageNet path on a tiny image-folder tree: ResNet-50 preprocessing, precomputed shards
(static mode: parallel, resumable, refused when they do not match), and a repair run from shards.
ResNet-50 end to end (on-the-fly corruptions, 224 px): tests/test_imagenet_224.py, on demand (pytest -m scale)."""

import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from ar2_tf import precompute, train
from ar2_tf.cli import run_main
from ar2_tf.data.pipelines import clean_pipeline
from ar2_tf.data.shards import MANIFEST, shard_name, static_pipeline
from ar2_tf.data.sources import load_dataset
from ar2_tf.models.architectures import build_model
from tests.helpers import tiny_classifier

SIZE = 32


def precompute_args(tree, out, severity=3):
    return ["--dataset", "imagenet", "--data-dir", tree, "--image-size", str(SIZE), "--corruption", "fog",
            "--severity", str(severity), "--shard-size", "4", "--batch-size", "2", "--out", out]


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    """train/: 2 classes x 4 PNGs; val/: 2 x 2; odd sizes, so every image is resized and centre-cropped."""
    root = tmp_path_factory.mktemp("imagenet")
    rng = np.random.default_rng(0)
    for split, count in (("train", 4), ("val", 2)):
        for name in ("n01440764", "n01443537"):
            os.makedirs(root / split / name)
            for index in range(count):
                shape = (40 + 3 * index, 52 - 2 * index, 3)
                Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8)).save(root / split / name / f"{index}.png")
    return str(root)


@pytest.fixture(scope="module")
def shards(tree, tmp_path_factory):
    out = str(tmp_path_factory.mktemp("shards") / "fog")
    assert run_main(precompute.main, precompute_args(tree, out)) == 0
    return out


def records(directory):
    files = sorted(os.path.join(directory, n) for n in os.listdir(directory) if n.endswith(".tfrecord"))
    return [record.numpy() for record in tf.data.TFRecordDataset(files)]


def test_tree_images_get_keras_resnet50_preprocessing(tree):
    source = load_dataset("imagenet", tree, image_size=SIZE)
    assert source.class_names == ("n01440764", "n01443537") and source.train_size == 8
    images = np.stack([image for image, _ in source.train.as_numpy_iterator()])
    assert images.shape == (8, SIZE, SIZE, 3) and images.dtype == np.uint8
    inputs = next(iter(clean_pipeline(source.train, batch_size=8, preprocessing="caffe")))[0]
    expected = keras.applications.resnet50.preprocess_input(images.astype("float32"))
    np.testing.assert_allclose(inputs.numpy(), expected, atol=1e-4)


def test_shards_hold_every_training_image_once_with_a_fixed_corrupted_view(tree, shards):
    with open(os.path.join(shards, MANIFEST)) as file:
        manifest = json.load(file)
    assert (manifest["num_examples"], manifest["num_shards"], manifest["severity"]) == (8, 2, 3)
    features = {"clean": tf.io.FixedLenFeature([], tf.string), "corrupted": tf.io.FixedLenFeature([], tf.string),
                "label": tf.io.FixedLenFeature([], tf.int64)}
    parsed = [tf.io.parse_single_example(record, features) for record in records(shards)]
    clean = np.stack([tf.io.decode_png(p["clean"]).numpy() for p in parsed])
    corrupted = np.stack([tf.io.decode_png(p["corrupted"]).numpy() for p in parsed])
    source = load_dataset("imagenet", tree, image_size=SIZE)
    originals = {image.tobytes(): label for image, label in source.train.as_numpy_iterator()}
    assert {image.tobytes(): int(p["label"]) for image, p in zip(clean, parsed)} == originals  # lossless PNG
    assert np.abs(corrupted.astype(int) - clean).mean() > 5  # fog at severity 3 changed them


def test_precompute_resumes_only_missing_shards_identically_and_refuses_another_set(tree, shards, capsys):
    before = records(shards)
    os.remove(os.path.join(shards, shard_name(1, 2)))
    open(os.path.join(shards, shard_name(1, 2) + ".tmp"), "w").close()  # a crash mid-write
    capsys.readouterr()
    assert run_main(precompute.main, precompute_args(tree, shards)) == 0
    written = [line for line in capsys.readouterr().out.splitlines() if line.startswith("wrote")]
    assert written == [f"wrote {os.path.join(shards, shard_name(1, 2))}"]
    assert records(shards) == before
    assert run_main(precompute.main, precompute_args(tree, shards, severity=2)) == 2
    assert "holds a different set of shards (changed: severity)" in capsys.readouterr().err


def test_static_pipeline_is_deterministic_covers_each_epoch_and_resumes(shards):
    def stream(start=0, count=6):
        batches = static_pipeline(shards, batch_size=4, preprocessing="unit", seed=5, start_batch=start,
                                  batches_per_epoch=2)
        return [((c.numpy(), x.numpy()), y.numpy()) for (c, x), y in batches.take(count)]

    first, again = stream(), stream()
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a[0][1], b[0][1])
    epoch = np.concatenate([first[0][0][0], first[1][0][0]])
    assert len({image.tobytes() for image in epoch}) == 8  # one data epoch: every record once
    orders = [np.concatenate([y for _, y in first[i:i + 2]]).tolist() for i in (0, 2, 4)]
    epochs = [np.concatenate([c for (c, _), _ in first[i:i + 2]]) for i in (0, 2, 4)]
    assert not all(np.array_equal(epochs[0], e) for e in epochs[1:])  # each data epoch has its own order
    assert all(sorted(o) == sorted(orders[0]) for o in orders)
    for a, b in zip(first[3:], stream(start=3, count=3)):
        np.testing.assert_array_equal(a[0][0], b[0][0])
        np.testing.assert_array_equal(a[1], b[1])


RUN = ["--dataset", "imagenet", "--image-size", str(SIZE), "--corruption", "fog", "--preset", "tiny",
       "--batch-size", "4", "--test-size", "4", "--verbose", "0"]


def check_report(out, mode):
    with open(os.path.join(out, "report.json")) as file:
        report = json.load(file)
    assert report["config"]["corruption_mode"] == mode and report["phases_run"] == 2
    assert report["preprocessing"] == "caffe" and report["input_shape"] == [SIZE, SIZE, 3]
    assert set(report["after"]["corrupted"]) == {"1", "2", "3", "4", "5"}


def test_resnet50_builder_gives_keras_resnet50_with_the_datasets_classes():
    model = build_model("resnet50", 2, (SIZE, SIZE, 3), "none")
    assert model.name == "resnet50" and model.output_shape == (None, 2) and model.input_shape == (None, SIZE, SIZE, 3)


def test_a_model_repairs_from_precomputed_shards(tree, shards, tmp_path, capsys):
    model = str(tmp_path / "classifier.keras")
    tiny_classifier(2, (SIZE, SIZE, 3)).save(model)
    out = str(tmp_path / "static")
    flags = ["--data-dir", tree, "--model", model, "--corruption-mode", "static", "--precomputed-dir", shards]
    assert run_main(train.main, RUN + flags + ["--out", out]) == 0
    check_report(out, "static")
    assert run_main(train.main, RUN + flags + ["--severity", "2", "--out", str(tmp_path / "bad")]) == 2
    assert "were made with severity 3 (run: 2)" in capsys.readouterr().err
