"""A model file fed inputs scaled otherwise than in its training is caught before any work
(ar2_tf.runs.preprocessing_check): the shared ResNet-20 (x/255) on real CIFAR-10 images."""

import os
import subprocess
import sys

import pytest
from PIL import Image

from ar2_tf.errors import UserError
from ar2_tf.runs.preprocessing_check import MIN_SAMPLE, check_preprocessing, mismatch
from tests.helpers import RESNET20, ROOT, needs_resnet20


def test_only_a_clearly_better_preprocessing_is_a_mismatch():
    assert mismatch({"unit": 90.0, "caffe": 10.0, "tf": 40.0}, "caffe") == "unit"
    assert mismatch({"unit": 90.0, "caffe": 10.0}, "unit") is None
    assert mismatch({"unit": 60.0, "tf": 40.0}, "tf") is None  # 20 points: within what a sample can hide
    assert mismatch({"unit": 70.0, "tf": 40.0}, "tf") is None  # 30 points but not double
    assert mismatch({"unit": 12.0, "caffe": 10.0}, "caffe") is None  # a model near chance either way


@needs_resnet20
def test_the_shared_resnet20_is_checked_on_real_images(resnet20, cifar10_test):
    images, labels = cifar10_test[0][:128], cifar10_test[1][:128]
    assert check_preprocessing(resnet20, images, labels, "unit", explicit=False) is None
    with pytest.raises(UserError, match=r"% with unit\b.*pass --preprocessing unit, or --preprocessing caffe"):
        check_preprocessing(resnet20, images, labels, "caffe", explicit=False)
    warning = check_preprocessing(resnet20, images, labels, "caffe", explicit=True)
    assert warning.startswith("warning: the model classifies") and "is --preprocessing caffe what" in warning
    few = MIN_SAMPLE - 1
    assert check_preprocessing(resnet20, images[:few], labels[:few], "caffe", explicit=False) is None


@pytest.fixture(scope="module")
def cifar_tree(cifar10_test, tmp_path_factory):
    """400 real CIFAR-10 images as a flat image folder: folder data, whose default preprocessing is caffe."""
    images, labels = cifar10_test
    root = tmp_path_factory.mktemp("tree")
    for index in range(400):
        folder = root / f"class_{labels[index]}"
        folder.mkdir(exist_ok=True)
        Image.fromarray(images[index]).save(folder / f"{index}.png")
    return str(root)


def _run(*flags):
    return subprocess.run([sys.executable, "-m", *flags], cwd=ROOT, capture_output=True, text=True)


def _one_error_line(done):
    lines = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert done.returncode == 2 and len(lines) == 1, done.stderr[-2000:]
    return lines[0]


@needs_resnet20
def test_a_model_file_on_folder_data_with_the_guessed_preprocessing_is_refused_before_any_work(cifar_tree, tmp_path):
    """The shared ResNet-20 was trained on x/255: train refuses before the pretrained model is evaluated."""
    run = tmp_path / "run"
    done = _run("ar2_tf.train", "--dataset", "folder", "--data-dir", cifar_tree, "--image-size", "32",
                "--model", RESNET20, "--val-size", "64", "--out", str(run))
    assert "pass --preprocessing unit" in _one_error_line(done)
    assert not os.path.exists(run / "before.json")


@needs_resnet20
def test_evaluate_checks_a_model_file_before_the_first_pass(cifar_tree, tmp_path):
    """(An explicit --preprocessing gets the warning line of test_the_shared_resnet20_is_checked_on_real_images.)"""
    flags = ["ar2_tf.evaluate", "--model", RESNET20, "--dataset", "folder", "--data-dir", cifar_tree, "--image-size",
             "32", "--corruptions", "fog", "--severities", "1", "--out", str(tmp_path / "evaluation")]
    error = _one_error_line(_run(*flags))
    assert error.startswith("error: cifar10_resnet20v1: the model classifies") and "of 80 test images" in error
    assert "pass --preprocessing unit" in error and not os.path.exists(tmp_path / "evaluation" / "evaluation.json")
