"""One mistake, two doors: the library's `UserError` names Python arguments (`batch_size`), a command words the
same message in its own flags (`--batch-size`, from its parser), and `ar2_tf.repair` names its own arguments
(`train`), never a file it wrote into the run folder."""

import os

import numpy as np
import pytest

import ar2_tf
from ar2_tf import evaluate, train
from ar2_tf.cli import flag_words, run_main
from ar2_tf.errors import UserError, worded
from tests.helpers import TINY_TRAIN_FLAGS, tiny_classifier


def _arrays(count=24, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (count, 16, 16, 3), dtype=np.uint8), np.arange(count) % 3


def _command_error(main, argv, capsys):
    assert run_main(main, argv) == 2
    error = capsys.readouterr().err
    assert error.startswith("error: ") and len(error.strip().splitlines()) == 1
    return error


def test_a_commands_flags_come_from_its_parser():
    words = flag_words(train.build_parser())
    assert words["batch_size"] == "--batch-size" and words["data_dir"] == "--data-dir"
    assert words["refine_learning_rate"] == "--refine-lr" and words["iterations"] == "--iterations"
    message = "lower `batch_size`, or pass `data_dir`; `x_train` and `model.keras` are no arguments"
    assert worded(message, words) == ("lower --batch-size, or pass --data-dir; `x_train` and `model.keras` are no "
                                      "arguments")
    assert UserError(message).names() == {"batch_size", "data_dir", "x_train"}
    assert flag_words(evaluate.build_parser())["cache_budget_gb"] == "--cache-budget-gb"


@pytest.mark.parametrize("option, value, python, flag", [
    ("batch_size", 0, "`batch_size` must be positive, got 0.", "--batch-size must be positive, got 0."),
    ("val_size", -1, "`val_size` must be 0 (no validation) or more", "--val-size must be 0 (no validation) or more"),
    ("refine_learning_rate", 0.0, "`refine_learning_rate` must be a finite number > 0",
     "--refine-lr must be a finite number > 0"),
])
def test_a_bad_option_is_named_as_each_door_takes_it(tmp_path, capsys, option, value, python, flag):
    with pytest.raises(UserError) as error:
        ar2_tf.repair(tiny_classifier(num_classes=3), _arrays(), out=str(tmp_path / "run"), verbose=0,
                      **{option: value})
    assert python in str(error.value) and "--" not in str(error.value)
    assert not os.path.exists(tmp_path / "run")  # refused before anything was left behind
    flag_name = "--refine-lr" if option == "refine_learning_rate" else "--" + option.replace("_", "-")
    said = _command_error(train.main, TINY_TRAIN_FLAGS + [flag_name, str(value), "--out", str(tmp_path / "cmd")],
                          capsys)
    assert flag in said and "`" not in said


def test_data_the_run_cannot_use_is_named_by_the_argument_not_the_file_written_for_it(tmp_path, capsys):
    images, labels = _arrays()
    with pytest.raises(UserError) as error:  # pixels scaled to [0, 1]
        ar2_tf.repair(tiny_classifier(num_classes=3), (images / 255.0, labels), out=str(tmp_path / "a"), verbose=0)
    message = str(error.value)
    assert message.startswith("the `train` images holds float64 values from 0 to 1, not pixels 0-255")
    assert "`preprocessing`" in message and "inputs" not in message and ".npz" not in message
    with pytest.raises(UserError) as error:  # one image per class: no fifth of a class to test on
        ar2_tf.repair(tiny_classifier(num_classes=3), (images[:3], labels[:3]), out=str(tmp_path / "b"), verbose=0)
    message = str(error.value)
    assert message.startswith("the test split of the `train` arrays holds no images")
    assert "inputs" not in message and "data-" not in message and "--" not in message
    with pytest.raises(UserError, match="^the training split has [0-9]+ images, fewer than one batch of 32; lower "
                                        "`batch_size`"):
        ar2_tf.repair(tiny_classifier(num_classes=3), _arrays(30), out=str(tmp_path / "c"), verbose=0,
                      batch_size=32)
    said = _command_error(train.main, TINY_TRAIN_FLAGS[:-4] + ["--batch-size", "500", "--verbose", "0",
                                                               "--out", str(tmp_path / "d")], capsys)
    assert "fewer than one batch of 500; lower --batch-size" in said


def test_a_data_path_given_to_repair_is_named_train(tmp_path):
    with pytest.raises(UserError) as error:
        ar2_tf.repair(tiny_classifier(num_classes=3), str(tmp_path / "missing"), dataset="folder",
                      out=str(tmp_path / "run"), verbose=0)
    message = str(error.value)
    assert str(tmp_path / "missing") in message and "pass `train` with an image-folder tree" in message
    assert "data_dir" not in message and "--" not in message
