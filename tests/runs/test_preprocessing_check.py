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


@needs_resnet20
def test_a_model_file_on_folder_data_with_the_guessed_preprocessing_is_refused_before_any_work(cifar10_test,
                                                                                             tmp_path):
    """Folder data defaults to caffe (keras.applications' ResNet-50); this model was trained on x/255."""
    images, labels = cifar10_test
    for index in range(400):
        folder = tmp_path / "tree" / f"class_{labels[index]}"
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(images[index]).save(folder / f"{index}.png")
    run = tmp_path / "run"
    command = [sys.executable, "-m", "ar2_tf.train", "--dataset", "folder", "--data-dir", str(tmp_path / "tree"),
               "--image-size", "32", "--model", RESNET20, "--val-size", "64", "--out", str(run)]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 2, done.stderr[-2000:]
    error = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(error) == 1 and "pass --preprocessing unit" in error[0], done.stderr[-2000:]
    assert not os.path.exists(run / "before.json")
