"""Every user mistake gets one clear message naming the problem and the fix, exit status 2, no traceback."""

import errno
import os
import subprocess
import sys

import keras
import pytest
import tensorflow as tf

from ar2_tf import train
from ar2_tf.cli import run_main
from tests.helpers import ROOT, TINY_TRAIN_FLAGS, frozen_base_classifier, tiny_classifier


def headless_model(tmp_path):
    """Two flattened branches joined before the Dense: no single last feature map to take attention from."""
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Concatenate()([keras.layers.Flatten()(keras.layers.Conv2D(4, 3)(inputs)),
                                    keras.layers.Flatten()(keras.layers.Conv2D(4, 5)(inputs))])
    path = str(tmp_path / "flat.keras")
    keras.Model(inputs, keras.layers.Dense(6, activation="softmax")(x)).save(path)
    return path


def saved(tmp_path, model, name):
    path = str(tmp_path / name)
    model.save(path)
    return path


def conv_only(tmp_path):
    inputs = keras.Input((32, 32, 3))
    return saved(tmp_path, keras.Model(inputs, keras.layers.Conv2D(6, 3)(inputs)), "conv.keras")


def no_conv(tmp_path):
    """A multilayer perceptron: its 'feature map' would be the input image, with nothing before it to repair."""
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Dense(16, activation="relu")(keras.layers.Flatten()(inputs))
    return saved(tmp_path, keras.Model(inputs, keras.layers.Dense(6, activation="softmax")(x)), "mlp.keras")


def frozen_base(tmp_path):
    return saved(tmp_path, frozen_base_classifier(), "frozen.keras")


def corrupt_file(tmp_path):
    path = tmp_path / "broken.keras"
    path.write_bytes(b"PK\x03\x04 truncated download")
    return str(path)


def a_file(tmp_path):
    path = tmp_path / "file.txt"
    path.write_text("x")
    return str(path)


# (case, flags; a callable gets tmp_path and returns a path, message fragment)
CASES = [
    ("unknown dataset", ["--dataset", "mnist"], "unknown dataset 'mnist'; choose one of"),
    ("unknown corruption", ["--corruption", "rain"], "unknown corruption 'rain'; choose one of"),
    ("unknown method", ["--method", "mixup"], "unknown method 'mixup'; choose one of"),
    ("tent trains nothing", ["--method", "tent"], "TENT adapts at test time and trains nothing: evaluate a model "
                                                  "under it with python -m ar2_tf.evaluate --tent MODEL"),
    ("unknown strategy", ["--strategy", "tpu"], "unknown strategy 'tpu'; choose one of"),
    ("unknown preset", ["--preset", "fast"], "unknown preset 'fast'"),
    ("severity 0", ["--severity", "0"], "severity must be an integer from 1 to 5, got '0'"),
    ("severity 6", ["--severity", "6"], "severity must be an integer from 1 to 5, got '6'"),
    ("severity text", ["--severity", "high"], "severity must be an integer from 1 to 5"),
    ("missing data dir", ["--dataset", "cifar10", "--model", "resnet20", "--data-dir", "/no/such/dir"],
     "does not exist"),
    ("data dir is a file", ["--dataset", "folder", "--data-dir", a_file], "is not a folder; pass --data-dir with an image-folder tree"),
    ("image folder without classes", ["--dataset", "folder", "--data-dir", lambda p: (p / "train").mkdir() or
                                      str(p)], "no class folders"),
    ("missing model", ["--model", "/no/such/model.h5"], "does not exist"),
    ("corrupt model file", ["--model", corrupt_file], "could not load model file"),
    ("not a classifier", ["--model", conv_only], "an image classifier maps"),
    ("no feature map to attend to", ["--model", headless_model], "--feature-layer NAME"),
    ("no convolutional layers", ["--model", no_conv], "the last feature map found is the model's input image"),
    ("frozen backbone", ["--model", frozen_base], "every layer up to the feature map 'base' is frozen "
                                                  "(trainable=False), so AR2's refinement"),
    ("label count != outputs", ["--model", lambda p: saved(p, tiny_classifier(4, (32, 32, 3)), "c4.keras")],
     "predicts 4 classes but the dataset has 6"),
    ("input size", ["--model", lambda p: saved(p, tiny_classifier(6, (16, 16, 3)), "s16.keras")],
     "pass --image-size 16"),
    ("--out not writable", ["--out", lambda p: a_file(p) + "/run"], "cannot write to --out"),
    ("batch larger than data", ["--batch-size", "500"], "fewer than one batch"),
    # Regression: 0 was taken for "not given" and silently replaced by the default.
    ("batch size 0", ["--batch-size", "0"], "--batch-size must be positive, got 0"),
    ("negative val size", ["--val-size", "-1"], "--val-size must be 0 (no validation) or more, got -1"),
    ("val size as large as the test split", ["--val-size", "600"], "has 600 images, too few to set 600 aside"),
    ("max clean drop nan", ["--max-clean-drop", "nan"], "--max-clean-drop must be a number of points >= 0"),
    ("alpha nan", ["--alpha", "nan"], "--alpha must be a finite number >= 0, got nan"),
    ("zero learning rate", ["--refine-lr", "0"], "--refine-lr must be a finite number > 0"),
    ("grayscale model", ["--model", lambda p: saved(p, tiny_classifier(6, (32, 32, 1)), "gray.keras")],
     "takes 1-channel images, but ar2-tf repairs RGB classifiers"),
    ("bad config file", ["--config", a_file], "pass a JSON object of config fields"),
    ("meanstd without its numbers", ["--preprocessing", "meanstd", "--std", "63"],
     "--preprocessing meanstd needs both --mean and --std (missing: --mean)"),
    ("--mean without meanstd", ["--mean", "125.3,123,113.9", "--std", "63"],
     "--mean/--std only go with --preprocessing meanstd"),
    ("std 0", ["--preprocessing", "meanstd", "--mean", "125", "--std", "0"],
     "the --std of a meanstd preprocessing must be 1 or 3 comma-separated numbers > 0 (R,G,B) in pixel units 0-255"),
    ("two means", ["--preprocessing", "meanstd", "--mean", "125,123", "--std", "63"],
     "the --mean of a meanstd preprocessing must be 1 or 3"),
    ("unknown preprocessing", ["--preprocessing", "imagenet"], "unknown preprocessing 'imagenet'; choose one of"),
]


@pytest.mark.parametrize("case, flags, message", CASES, ids=[case[0] for case in CASES])
def test_bad_input(tmp_path, capsys, case, flags, message):
    flags = [flag(tmp_path) if callable(flag) else flag for flag in flags]
    if "--out" not in flags:
        flags += ["--out", str(tmp_path / "run")]
    code = run_main(train.main, TINY_TRAIN_FLAGS + flags)
    error = capsys.readouterr().err
    assert code == 2, error
    assert message in error and error.startswith("error: ") and "Traceback" not in error
    assert not (tmp_path / "run" / "before.json").exists()  # refused before the pretrained model is evaluated


def test_out_holding_a_different_run_is_refused_unless_forced(tmp_path, capsys):
    out = str(tmp_path / "run")
    assert run_main(train.main, TINY_TRAIN_FLAGS + ["--out", out, "--batch-size", "500"]) == 2  # writes config.json, fails
    capsys.readouterr()
    assert run_main(train.main, TINY_TRAIN_FLAGS + ["--out", out, "--batch-size", "400"]) == 2
    assert "holds a different run (changed: batch_size)" in capsys.readouterr().err
    assert run_main(train.main, TINY_TRAIN_FLAGS + ["--out", out, "--batch-size", "400", "--force"]) == 2
    assert "fewer than one batch of 400" in capsys.readouterr().err  # --force got past the refusal


def test_disk_full_during_checkpoint_keeps_the_previous_one(tmp_path, capsys, monkeypatch):
    original = tf.train.CheckpointManager.save
    calls = []

    def fail_second_save(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(tf.train.CheckpointManager, "save", fail_second_save)
    out = str(tmp_path / "run")
    code = run_main(train.main, TINY_TRAIN_FLAGS + ["--out", out, "--step-unit", "epoch"])
    error = capsys.readouterr().err
    assert code == 2 and "No space left on device" in error and "ckpt-0" in error and "is intact" in error
    assert tf.train.latest_checkpoint(f"{out}/checkpoints").endswith("ckpt-0")


def test_nan_loss_stops_names_the_phase_and_keeps_the_last_good_checkpoint(tmp_path, capsys):
    out = str(tmp_path / "run")
    flags = ["--out", out, "--step-unit", "epoch", "-T", "2", "--finetune-lr", "1e12", "--refine-lr", "0.01",
             "--val-size", "0"]  # 3 batches per epoch: the first fine-tuning epoch diverges
    code = run_main(train.main, TINY_TRAIN_FLAGS + flags)
    error = capsys.readouterr().err
    assert code == 2 and "NaN/Inf loss in the finetune phase, epoch 2" in error
    assert "ckpt-0" in error and tf.train.latest_checkpoint(f"{out}/checkpoints").endswith("ckpt-0")


def test_meanstd_without_its_numbers_is_one_line_and_exit_2_from_the_command():
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}  # a user's shell: a quiet start
    done = subprocess.run([sys.executable, "-m", "ar2_tf.train", "--preprocessing", "meanstd"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    lines = done.stderr.splitlines()
    assert done.returncode == 2 and len(lines) == 1, done.stderr
    assert "--preprocessing meanstd needs both --mean and --std" in lines[0] and "Traceback" not in done.stderr


@pytest.mark.parametrize("command", ["evaluate", "tuning"])
@pytest.mark.parametrize("flags, message", [
    (["--preprocessing", "meanstd", "--mean", "125"], "needs both --mean and --std (missing: --std)"),
    (["--std", "63"], "--mean/--std only go with --preprocessing meanstd"),
])
def test_evaluate_and_tuning_refuse_bad_preprocessing_flags(tmp_path, capsys, command, flags, message):
    if command == "evaluate":
        from ar2_tf.evaluate import main
        flags = ["--model", str(tmp_path / "m.keras"), "--dataset", "demo", *flags]
    else:
        from tuning.__main__ import main
    assert run_main(main, flags + ["--out", str(tmp_path / "out")]) == 2
    error = capsys.readouterr().err
    assert message in error and error.startswith("error: ") and "Traceback" not in error
    assert not (tmp_path / "out").exists()  # refused before any work
