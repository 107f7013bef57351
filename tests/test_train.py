"""`python -m ar2_tf.train` end to end on the demo data, and its answers to bad input."""

import glob
import json
import os
import shutil

import keras
import numpy as np
import pytest
from PIL import Image

from ar2_tf import train
from ar2_tf.cli import run_main
from tests.helpers import TINY_TRAIN_FLAGS, tiny_classifier


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("runs") / "demo")
    assert run_main(train.main, TINY_TRAIN_FLAGS + ["--out", out]) == 0
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
    # Half of the demo's 600 held-out test images choose the kept phase, others test; the model saved is the kept one.
    assert (report["train_size"], report["val_size"]) == (96, 300)
    assert report["validation_source"]["source"] == "held_out" and report["clean_rise"]["images"] == 48
    validation = report["validation"]
    assert [p["epoch"] for p in validation["phases"]] == [0] and validation["kept"] in (0, "pretrained")
    assert glob.glob(os.path.join(tiny_run, "logs", "validation", "events.*"))


def test_rerun_reuses_a_finished_run_and_refuses_a_different_config(tiny_run, capsys):
    assert run_main(train.main, TINY_TRAIN_FLAGS + ["--out", tiny_run]) == 0
    assert "reusing its report" in capsys.readouterr().out
    assert run_main(train.main, TINY_TRAIN_FLAGS + ["--out", tiny_run, "--alpha", "0.5"]) == 2
    assert "holds a different run (changed: repair)" in capsys.readouterr().err


def test_a_run_recorded_before_newer_config_fields_is_the_same_run(tiny_run, tmp_path, capsys):
    """Fields added to the config since a run was written take their defaults: the run is reused."""
    old = str(tmp_path / "old")
    shutil.copytree(tiny_run, old)
    path = os.path.join(old, "config.json")
    with open(path) as file:
        recorded = json.load(file)
    del recorded["config"]["strict_images"], recorded["config"]["repair"]["attention"]  # as an older version wrote
    with open(path, "w") as file:
        json.dump(recorded, file)
    assert run_main(train.main, TINY_TRAIN_FLAGS + ["--out", old]) == 0
    assert "reusing its report" in capsys.readouterr().out
    assert run_main(train.main, TINY_TRAIN_FLAGS + ["--out", old, "--attention", "gradcam"]) == 2
    assert "holds a different run (changed: repair)" in capsys.readouterr().err


def test_config_file_sets_only_the_fields_it_names_and_flags_win(tmp_path):
    path = tmp_path / "best.json"
    path.write_text(json.dumps({"dataset": "cifar10", "corruption": "fog", "k": 2, "alpha": 0.7,
                                "repair": {"refine_steps": 2}}))
    config = train.config_from_args(train.build_parser().parse_args(["--config", str(path), "--alpha", "0.4"]))
    assert (config.dataset, config.corruption, config.method, config.severity) == ("cifar10", "fog", "ar2", 3)
    assert (config.repair.k, config.repair.alpha, config.repair.refine_steps) == (2, 0.4, 2)
    assert config.repair.iterations == 30  # the cifar10 dataset default preset, not the demo's
    path.write_text(json.dumps({"colour": "red"}))
    with pytest.raises(Exception, match="unknown config field"):
        train.config_from_args(train.build_parser().parse_args(["--config", str(path)]))


def test_summary_marks_a_clean_error_rise_above_the_allowed_drop(capsys):
    report = {"config": {"method": "ar2", "corruption": "fog", "max_clean_drop": 1.0},
              "before": {"clean": 7.4, "corrupted": {"3": 20.0}, "mean_corrupted": 20.0},
              "after": {"clean": 9.0, "corrupted": {"3": 12.0}, "mean_corrupted": 12.0}, "validation": None}
    train.print_summary(report, "runs/x")
    lines = capsys.readouterr().out.splitlines()
    clean = next(line for line in lines if line.startswith("clean"))
    assert clean.endswith("<- clean error +1.60 points, more than the allowed 1 (--max-clean-drop)")
    assert lines[-1] == "kept: the last phase (no validation split)"
    report["after"]["clean"] = 8.0
    train.print_summary(report, "runs/x")
    assert "<-" not in capsys.readouterr().out


def test_the_presets_k_on_data_with_fewer_classes_uses_every_class(tmp_path, capsys):
    """ImageNet's preset takes the top 5 classes: on a 3-class image folder that is all 3, said in a note."""
    root = tmp_path / "three"
    rng = np.random.default_rng(0)
    for split, count in (("train", 24), ("val", 6)):
        for name in ("cat", "dog", "eel"):
            (root / split / name).mkdir(parents=True)
            for index in range(count):
                Image.fromarray(rng.integers(0, 255, (32, 32, 3), np.uint8)).save(root / split / name / f"{index}.png")
    model = str(tmp_path / "three.keras")
    tiny_classifier(3, (32, 32, 3)).save(model)
    flags = ["--dataset", "folder", "--data-dir", str(root), "--model", model, "--image-size", "32", "--batch-size",
             "16", "-T", "1", "--step-unit", "batch", "--val-size", "0", "--verbose", "0", "--out", str(tmp_path / "r")]
    assert run_main(train.main, flags) == 0
    assert "k = 5 is more than the 3 classes of the data, so Eq. 2's class set is all 3 classes" in \
        capsys.readouterr().out
