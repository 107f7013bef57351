"""A model other people trained, repaired end to end as a user runs it: the guard validates on held-out images
and the report says how sure it was (the full measurement: scripts/zoo.py)."""

import json

import pytest

from ar2_tf import train
from ar2_tf.cli import run_main
from tests.helpers import CIFAR10_EXACT, ZOO_RESNET8, needs_cifar10, needs_zoo


@pytest.mark.slow
@needs_zoo
@needs_cifar10
def test_a_third_party_model_is_guarded_on_test_images_it_never_saw(tmp_path, capsys):
    out = str(tmp_path / "run")
    flags = ["--dataset", "cifar10", "--data-dir", CIFAR10_EXACT, "--model", ZOO_RESNET8, "--preprocessing", "none",
             "--train-size", "256", "--test-size", "100", "--val-size", "200", "--batch-size", "64",
             "--corruption", "contrast", "-T", "1", "--step-unit", "batch", "--verbose", "0", "--out", out]
    assert run_main(train.main, flags) == 0
    printed = capsys.readouterr().out
    with open(f"{out}/report.json") as file:
        report = json.load(file)
    source = report["validation_source"]
    assert (source["source"], source["origin"], source["val_size"], source["test_size"]) == (
        "held_out", "the test split", 200, 100)
    assert "validation: 200 images from the test split; 100 other test images" in printed
    assert "lenient" not in printed
    # The test-set rise is paired over the 100 test images and agrees with the before/after errors.
    rise = report["clean_rise"]
    assert rise["images"] == 100 and abs(rise["rise"] - (report["after"]["clean"] - report["before"]["clean"])) < 1.1
    # The pretrained model's clean error on held-out images is that of a model that never saw them (12 % on the
    # 1,017 exact test images, its README), not the near-zero of its own training images.
    assert 5 < report["validation"]["baseline"]["clean"] < 25
    phases = report["validation"]["phases"]
    assert phases and all(phase["clean_rise"]["images"] == 200 for phase in phases)
