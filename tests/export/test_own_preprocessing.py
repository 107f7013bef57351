"""A model trained with the user's own mean/std: `--preprocessing meanstd --mean R,G,B --std R,G,B` becomes one
spec string that flows unchanged through the run's config and report.json to the evaluation of the run folder
and the TF Serving export, whose signatures then match Keras on (x - mean) / std."""

import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from ar2_tf import train
from ar2_tf.cli import run_main
from ar2_tf.data.holdout import AUTO
from ar2_tf.data.sources import load_dataset
from ar2_tf.evaluation.suite import EvaluationSetup, run_evaluation
from ar2_tf.runs.evaluated_runs import model_spec
from export.exporter import METADATA_FILE, ExportOptions, export_runs
from export.finished_run import read_run
from tests.helpers import TINY_TRAIN_FLAGS

MEAN, STD = np.array([125.3, 123.0, 113.9]), np.array([63.0, 62.1, 66.7])  # common CIFAR code, pixel units
SPEC = "meanstd:125.3,123,113.9:63,62.1,66.7"
TEST_SIZE = 24


@pytest.fixture(scope="module")
def meanstd_run(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("runs") / "meanstd")
    flags = ["--preprocessing", "meanstd", "--mean", "125.3,123,113.9", "--std", "63,62.1,66.7", "--out", out]
    assert run_main(train.main, TINY_TRAIN_FLAGS + flags) == 0
    return out


@pytest.fixture(scope="module")
def test_images():
    # The run's test images: the split less the part the run validated on (`ar2_tf.data.holdout`).
    images, labels = next(iter(load_dataset("demo", None, 1, TEST_SIZE, validation=AUTO).test.batch(1000)))
    return images.numpy(), labels.numpy()


def _by_hand(images):
    return ((images.astype(np.float64) - MEAN) / STD).astype(np.float32)


def test_the_spec_is_recorded_in_the_run_config_and_report(meanstd_run, capsys):
    with open(os.path.join(meanstd_run, "report.json")) as file:
        report = json.load(file)
    assert report["config"]["preprocessing"] == report["preprocessing"] == SPEC
    assert read_run(meanstd_run).preprocessing == SPEC
    # Re-running the same command finds the same run (the spec is part of its identity) ...
    flags = ["--preprocessing", "meanstd", "--mean", "125.3,123.0,113.9", "--std", "63,62.1,66.7",
             "--out", meanstd_run]
    assert run_main(train.main, TINY_TRAIN_FLAGS + flags) == 0
    # ... and other statistics are a different run.
    flags[flags.index("--std") + 1] = "64"
    assert run_main(train.main, TINY_TRAIN_FLAGS + flags) == 2
    assert "holds a different run (changed: preprocessing)" in capsys.readouterr().err


def test_evaluating_the_run_folder_uses_its_spec(meanstd_run, test_images):
    setup = EvaluationSetup(corruptions=("brightness",), severities=(1,), test_size=TEST_SIZE)
    results = run_evaluation([model_spec(meanstd_run)], setup, cache_dir=None, verbose=0)
    [entry] = results["models"].values()
    assert entry["preprocessing"] == SPEC
    model = keras.saving.load_model(os.path.join(meanstd_run, "model.keras"), compile=False)
    images, labels = test_images
    predicted = np.argmax(model(_by_hand(images), training=False), axis=-1)
    assert entry["clean"] == pytest.approx(100.0 * np.mean(predicted != labels))


def test_the_export_serves_the_model_on_meanstd_inputs(meanstd_run, test_images, tmp_path):
    [result] = export_runs([meanstd_run], tmp_path, options=ExportOptions(allow_clean_drop=True), log=lambda t: None)
    assert "predict_preprocessed" in result["checked"]
    loaded = tf.saved_model.load(str(tmp_path / result["name"] / str(result["version"])))
    with open(tmp_path / result["name"] / str(result["version"]) / "assets.extra" / METADATA_FILE) as file:
        assert json.load(file)["preprocessing"] == SPEC
    images = test_images[0]
    model = keras.saving.load_model(os.path.join(meanstd_run, "model.keras"), compile=False)
    expected = model(_by_hand(images), training=False).numpy()
    assert not np.allclose(expected, model(images.astype(np.float32) / 255.0, training=False).numpy(), atol=1e-3)
    served = loaded.signatures["serving_default"](images=tf.constant(images))
    preprocessed = loaded.signatures["predict_preprocessed"](inputs=tf.constant(_by_hand(images)))
    for outputs in (served, preprocessed):
        np.testing.assert_allclose(outputs["probabilities"].numpy(), expected, atol=1e-5)
        np.testing.assert_array_equal(outputs["classes"].numpy(), expected.argmax(-1))
