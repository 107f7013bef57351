"""A model file fed inputs scaled otherwise than in its training is caught before any work
(ar2_tf.models.preprocessing_check): the shared ResNet-20 (x/255) on real CIFAR-10 images."""

import os

import pytest
from PIL import Image

from ar2_tf.errors import UserError
from ar2_tf.models.preprocessing_check import MIN_SAMPLE, check_preprocessing, mismatch
from tests.helpers import RESNET20, needs_resnet20


def test_only_a_clearly_better_preprocessing_is_a_mismatch():
    assert mismatch({"unit": 90.0, "caffe": 10.0, "tf": 40.0}, "caffe") == "unit"
    assert mismatch({"unit": 90.0, "caffe": 10.0}, "unit") is None
    assert mismatch({"unit": 60.0, "tf": 40.0}, "tf") is None  # 20 points: within what a sample can hide
    assert mismatch({"unit": 70.0, "tf": 40.0}, "tf") is None  # 30 points but not double
    assert mismatch({"unit": 12.0, "caffe": 10.0}, "caffe") is None  # a model near chance either way


@needs_resnet20
def test_the_shared_resnet20_is_checked_on_real_images(resnet20, cifar10_test):
    images, labels = cifar10_test[0][:64], cifar10_test[1][:64]
    assert check_preprocessing(resnet20, images, labels, "unit", explicit=False) is None
    with pytest.raises(UserError, match=r"% with unit\b.*pass `preprocessing` unit, or `preprocessing` caffe"):
        check_preprocessing(resnet20, images, labels, "caffe", explicit=False)
    warning = check_preprocessing(resnet20, images, labels, "caffe", explicit=True)
    assert warning.startswith("warning: the model classifies") and warning.endswith(
        "% with unit; is caffe the preprocessing the model was trained with?") and "with preprocessing caffe" in warning
    assert "`" not in warning and "--" not in warning  # printed as is by every door: it names no argument
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


def _one_error_line(main, flags, capsys):
    """Runs a command in this process as `python -m` does; its one `error:` line (exit status 2)."""
    from ar2_tf.cli import run_main

    capsys.readouterr()
    assert run_main(main, flags) == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1
    return lines[0]


@needs_resnet20
@pytest.mark.parametrize("flags, checked", [
    (["--val-size", "64"], "of 64 validation images"),
    (["--val-size", "0"], "of 128 training images"),  # no validation images: a seeded sample of the training ones
    (["--method", "bn-adapt"], "of 128 training images"),  # a method that selects no phase has none either
])
def test_a_model_file_on_folder_data_with_the_guessed_preprocessing_is_refused_before_any_work(cifar_tree, tmp_path,
                                                                                             capsys, flags, checked):
    """The shared ResNet-20 was trained on x/255: train refuses before the pretrained model is evaluated."""
    from ar2_tf import train

    run = tmp_path / "run"
    error = _one_error_line(train.main, ["--dataset", "folder", "--data-dir", cifar_tree, "--image-size", "32",
                                         "--model", RESNET20, *flags, "--out", str(run)], capsys)
    assert "pass --preprocessing unit" in error and checked in error
    assert not os.path.exists(run / "before.json")


@needs_resnet20
def test_evaluate_checks_a_model_file_before_the_first_pass(cifar_tree, tmp_path, capsys):
    """(An explicit --preprocessing gets the warning line of test_the_shared_resnet20_is_checked_on_real_images.)"""
    from ar2_tf import evaluate

    flags = ["--model", RESNET20, "--dataset", "folder", "--data-dir", cifar_tree, "--image-size", "32",
             "--corruptions", "fog", "--severities", "1", "--out", str(tmp_path / "evaluation")]
    error = _one_error_line(evaluate.main, flags, capsys)
    assert error.startswith("error: cifar10_resnet20v1: the model classifies") and "of 80 test images" in error
    assert "pass --preprocessing unit" in error and not os.path.exists(tmp_path / "evaluation" / "evaluation.json")


@needs_resnet20
def test_tuning_checks_the_model_file_before_its_baseline(cifar_tree, tmp_path, capsys):
    from tuning import __main__ as tuning

    out = tmp_path / "tune"
    error = _one_error_line(tuning.main, ["--dataset", "folder", "--data-dir", cifar_tree, "--image-size", "32",
                                          "--model", RESNET20, "--val-size", "64", "--epochs-budget", "1",
                                          "--verbose", "0", "--out", str(out)], capsys)
    assert "pass --preprocessing unit" in error and not os.path.exists(out / "baseline.json")
