"""The ImageNet path end to end at 224 px: a generated image-folder tree, ResNet-50
(weights none) repaired, the streamed 15 x 5 evaluation, the export, and the serving signature equal to Keras."""

import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from ar2_tf import evaluate, train
from ar2_tf.cli import run_main
from ar2_tf.corruptions import BENCHMARK_CORRUPTIONS
from export.__main__ import main as export_main


def write_tree(root, classes=2, train=4, val=2, side=256):
    rng = np.random.default_rng(0)
    for split, count in (("train", train), ("val", val)):
        for label in range(classes):
            folder = root / split / f"class{label}"
            folder.mkdir(parents=True)
            for index in range(count):
                base = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)  # smooth, textured, per image
                image = Image.fromarray(base).resize((side, side), Image.BILINEAR)
                image.save(folder / f"{index}.jpg", quality=90)
    return str(root)


# On demand (`pytest -m scale`, pytest.ini), not in the default run: 90-140 s of the suite's 10-minute budget, its
# cost ResNet-50's own tracing at 224 px. Its pieces run in the default run at small sizes: the ImageNet data path
# and a repair run (tests/test_imagenet_path.py), ResNet-50's repair steps and serving graph (test_model_families),
# streamed evaluation (tests/evaluation), an export saved, reloaded and verified (tests/export). Run it with any
# change to those paths (docs/development/testing.md).
@pytest.mark.slow
@pytest.mark.scale
def test_resnet50_at_224_px_trains_evaluates_15_by_5_streamed_and_serves_as_keras(tmp_path):
    tree = write_tree(tmp_path / "tree")
    run = str(tmp_path / "run")
    model_file = str(tmp_path / "resnet50.keras")  # weights none: the path is under test, not the accuracy
    keras.applications.ResNet50(weights=None, classes=2, input_shape=(224, 224, 3)).save(model_file)
    assert run_main(train.main, ["--dataset", "imagenet", "--data-dir", tree, "--model", model_file, "--preset", "tiny",
                                 "--batch-size", "4", "--val-size", "0", "--test-size", "1", "--corruption", "contrast",
                                 "--verbose", "0", "--out", run]) == 0
    with open(os.path.join(run, "report.json")) as file:
        report = json.load(file)
    assert report["input_shape"] == [224, 224, 3] and report["preprocessing"] == "caffe"

    evaluation = str(tmp_path / "evaluation")
    assert run_main(evaluate.main, ["--model", run, "--out", evaluation, "--test-size", "1", "--verbose", "0"]) == 0
    with open(os.path.join(evaluation, "evaluation.json")) as file:
        results = json.load(file)
    (entry,) = results["models"].values()
    assert results["setup"]["source"]["kind"] == "generated" and results["setup"]["params"] == "imagenet"
    assert sorted(entry["errors"]) == sorted(BENCHMARK_CORRUPTIONS)
    assert all(len(entry["errors"][c]) == 5 for c in BENCHMARK_CORRUPTIONS)

    serving = str(tmp_path / "serving")
    assert run_main(export_main, ["--run", run, "--out", serving, "--allow-clean-drop"]) == 0
    (name,) = [n for n in os.listdir(serving) if os.path.isdir(os.path.join(serving, n))]
    version = os.path.join(serving, name, sorted(os.listdir(os.path.join(serving, name)))[-1])
    signature = tf.saved_model.load(version).signatures["serving_default"]
    images = np.stack([np.asarray(Image.open(os.path.join(tree, "val", "class0", f"{i}.jpg"))) for i in range(2)])
    model = keras.saving.load_model(os.path.join(run, "model.keras"), compile=False)
    crop = images[:, 16:240, 16:240].astype("float32")  # the 224 centre crop of a 256 image
    expected = model(keras.applications.resnet50.preprocess_input(crop), training=False).numpy()
    np.testing.assert_allclose(signature(images=tf.constant(images))["probabilities"].numpy(), expected, atol=1e-4)
