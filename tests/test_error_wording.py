"""One mistake, two doors: the library's `UserError` names Python arguments (`batch_size`), a command words the
same message in its own flags (`--batch-size`, from its parser), and `ar2_tf.repair` names its own arguments
(`train`), never a file it wrote into the run folder."""

import os

import keras
import numpy as np
import pytest

import ar2_tf
from ar2_tf import benchmark, benchmark_view, evaluate, train
from ar2_tf.cli import flag_words, run_main
from ar2_tf.errors import UserError, worded
from ar2_tf.models.loading import load_model_file
from export import __main__ as export_command
from tests.helpers import ROOT, TINY_TRAIN_FLAGS, tiny_classifier
from tuning import __main__ as tuning_command


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


def _lambda_model(path, side=16, classes=3):
    """A classifier with a Lambda layer: a model file that holds Python code."""
    inputs = keras.Input((side, side, 3))
    x = keras.layers.Conv2D(4, 3)(keras.layers.Lambda(lambda images: images * 1.0)(inputs))
    keras.Model(inputs, keras.layers.Dense(classes, activation="softmax")(keras.layers.GlobalAveragePooling2D()(x))
                ).save(path)
    return path


def test_a_model_file_holding_python_code_is_refused_in_each_doors_words(tmp_path, capsys):
    path = _lambda_model(str(tmp_path / "lambda.keras"))
    with pytest.raises(UserError) as error:
        load_model_file(path)
    assert error.value.names() == {"unsafe_model_loading"} and "--" not in str(error.value)
    with pytest.raises(UserError) as error:
        ar2_tf.repair(path, _arrays(), out=str(tmp_path / "run"), verbose=0, batch_size=8)
    assert str(error.value).endswith("Only if you trust the file, pass `unsafe_model_loading`.")
    said = _command_error(evaluate.main, ["--model", path, "--dataset", "demo", "--test-size", "20", "--corruptions",
                                          "fog", "--severities", "1", "--verbose", "0"], capsys)
    assert said.rstrip().endswith("Only if you trust the file, pass --unsafe-model-loading.") and "`" not in said


def test_a_model_the_data_does_not_fit_is_named_by_the_size_argument_or_flag(tmp_path, capsys):
    path = str(tmp_path / "s16.keras")
    tiny_classifier(num_classes=6, input_shape=(16, 16, 3)).save(path)  # the demo data's 6 classes, 32x32 images
    images = np.random.default_rng(0).integers(0, 256, (60, 32, 32, 3), dtype=np.uint8)
    with pytest.raises(UserError, match=r"the data is 32x32; pass `image_size` 16 to resize the data\.$"):
        ar2_tf.repair(path, (images, np.arange(60) % 6), out=str(tmp_path / "run"), verbose=0, batch_size=8)
    said = _command_error(train.main, TINY_TRAIN_FLAGS + ["--model", path, "--out", str(tmp_path / "cmd")], capsys)
    assert "pass --image-size 16 to resize the data." in said and "`" not in said


# The argument names of the models/ messages, and the commands that load or build a model with the flags they lack.
MODEL_NAMES = {"unsafe_model_loading", "custom_objects", "model", "weights", "image_size", "preprocessing"}
COMMANDS = [(train, set()), (benchmark, set()), (tuning_command, set()),
            (evaluate, {"weights"}),  # evaluates model files and run folders: it builds no architecture
            (export_command, {"model", "weights", "image_size", "preprocessing"})]  # finished run folders only


@pytest.mark.parametrize("command, lacks", COMMANDS, ids=[c.__name__ for c, _ in COMMANDS])
def test_every_command_that_loads_a_model_words_the_model_messages(command, lacks):
    words = flag_words(*(build() for build in command.main.build_parsers))
    assert {name for name in MODEL_NAMES if name in words} == MODEL_NAMES - lacks
    assert all(words[name] == "--" + name.replace("_", "-") for name in MODEL_NAMES - lacks)
    sources = "".join(open(os.path.join(ROOT, "ar2_tf", "models", name)).read()
                      for name in ("loading.py", "architectures.py", "checks.py", "preprocessing_check.py"))
    assert all(f"`{name}`" in sources for name in MODEL_NAMES)


def test_flags_whose_library_argument_has_another_name_carry_it_as_their_dest():
    exporting = flag_words(export_command.build_parser())
    assert exporting["run_paths"] == "--run" and exporting["names"] == "--name"  # export_runs(run_paths, names=)
    viewing = flag_words(benchmark_view.build_parser())
    assert viewing["benchmark_dir"] == "--benchmark" and viewing["evaluation_dir"] == "--evaluation"  # write_view


def test_a_reused_runs_note_speaks_each_doors_words(tmp_path, capsys):
    """The note a finished run prints when it is reused: `force` from Python, --force from the command."""
    model = str(tmp_path / "model.keras")
    tiny_classifier(num_classes=6, input_shape=(32, 32, 3)).save(model)  # the demo's 6 classes: no resnet8 to train
    out = str(tmp_path / "run")
    argv = [*TINY_TRAIN_FLAGS, "--model", model, "--out", out]
    assert run_main(train.main, argv) == 0
    capsys.readouterr()
    assert run_main(train.main, argv) == 0
    assert "reusing its report (--force runs it again)" in capsys.readouterr().out
    from ar2_tf.runs.repair_run import run_repair

    config = train.config_from_args(train.build_parser().parse_args(argv))
    run_repair(config, out)
    assert "reusing its report (`force` runs it again)" in capsys.readouterr().out
