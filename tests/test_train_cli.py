"""`python -m ar2_tf.train` end to end on the demo data, and its answers to bad input."""

import glob
import json
import os

import keras
import pytest

from ar2_tf import train
from ar2_tf.cli import run_main
from tests.conftest import tiny_classifier

TINY = ["--dataset", "demo", "--train-size", "96", "--test-size", "48", "--batch-size", "32",
        "--pretrain-epochs", "1", "--preset", "tiny", "--verbose", "0"]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("runs") / "demo")
    assert run_main(train.main, TINY + ["--out", out]) == 0
    return out


def test_run_writes_model_report_checkpoints_and_tensorboard_logs(tiny_run):
    with open(os.path.join(tiny_run, "report.json")) as file:
        report = json.load(file)
    assert report["phases_run"] == 2 and report["config"]["corruption"] == "gaussian_noise"
    for stage in ("before", "after"):
        assert set(report[stage]["corrupted"]) == {"1", "2", "3", "4", "5"}
        assert 0 <= report[stage]["clean"] <= 100
    model = keras.saving.load_model(os.path.join(tiny_run, "model.keras"))
    assert model.output_shape == (None, 6)
    assert glob.glob(os.path.join(tiny_run, "checkpoints", "ckpt-*.index"))
    events = glob.glob(os.path.join(tiny_run, "logs", "cams", "events.*"))
    assert events and os.path.getsize(events[0]) > 10_000  # holds the CAM images


def test_rerun_reuses_a_finished_run_and_refuses_a_different_config(tiny_run, capsys):
    assert run_main(train.main, TINY + ["--out", tiny_run]) == 0
    assert "reusing its report" in capsys.readouterr().out
    assert run_main(train.main, TINY + ["--out", tiny_run, "--alpha", "0.5"]) == 2
    assert "holds a different run (changed: repair)" in capsys.readouterr().err


def headless_model(tmp_path):
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Flatten()(keras.layers.Conv2D(4, 3)(inputs))
    path = str(tmp_path / "flat.keras")
    keras.Model(inputs, keras.layers.Dense(6, activation="softmax")(x)).save(path)
    return path


@pytest.mark.parametrize("flags, message", [
    (["--corruption", "rain"], "unknown corruption 'rain'"),
    (["--dataset", "mnist"], "unknown dataset 'mnist'"),
    (["--severity", "0"], "severity must be an integer from 1 to 5, got '0'"),
    (["--severity", "6"], "severity must be an integer from 1 to 5, got '6'"),
    (["--method", "mixup"], "unknown method 'mixup'"),
    (["--strategy", "tpu"], "unknown strategy 'tpu'"),
    (["--data-dir", "/no/such/dir", "--dataset", "cifar10", "--model", "resnet20"], "does not exist"),
    (["--model", "/no/such/model.h5"], "does not exist"),
    (["--model", "HEADLESS"], "cannot compute CAMs"),
    (["--model", "SMALL"], "predicts 4 classes but the dataset has 6"),
])
def test_bad_input_gets_one_clear_message_and_exit_2(tmp_path, capsys, flags, message):
    flags = [headless_model(tmp_path) if f == "HEADLESS" else f for f in flags]
    if "SMALL" in flags:
        path = str(tmp_path / "small.keras")
        tiny_classifier(num_classes=4, input_shape=(32, 32, 3)).save(path)
        flags = [path if f == "SMALL" else f for f in flags]
    code = run_main(train.main, TINY + flags + ["--out", str(tmp_path / "run")])
    error = capsys.readouterr().err
    assert code == 2 and message in error and "Traceback" not in error
