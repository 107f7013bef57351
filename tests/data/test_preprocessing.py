"""The one rule for a model's default preprocessing, the functions it names, and the user's own mean/std."""

import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from ar2_tf import train
from ar2_tf.cli import run_main
from ar2_tf.data.preprocessing import (
    PREPROCESSORS,
    default_preprocessing,
    get_preprocessor,
    model_carries_preprocessing,
)
from ar2_tf.data.preprocessing_spec import NAMES, check_preprocessing, preprocessing_spec
from ar2_tf.data.sources import load_dataset
from ar2_tf.errors import UserError
from ar2_tf.evaluation.suite import EvaluationSetup, run_evaluation
from ar2_tf.runs.config import TrainConfig
from ar2_tf.runs.plan import plan_run
from tests.helpers import RESNET20, TINY_TRAIN_FLAGS, needs_resnet20, tiny_classifier

CIFAR_MEAN, CIFAR_STD = "125.3,123.0,113.9", "63.0,62.1,66.7"  # common CIFAR code, pixel units
CIFAR_SPEC = "meanstd:125.3,123,113.9:63,62.1,66.7"


@pytest.mark.parametrize("model, dataset, expected", [
    ("resnet50", "cifar10", "caffe"), ("resnet20", "imagenet", "unit"), ("m.keras", "cifar10", "unit"),
    ("m.keras", "imagenet", "caffe"), ("m.h5", "folder", "caffe"), ("m.keras", "demo", "unit"),
])
def test_default_follows_the_architecture_then_the_dataset(model, dataset, expected):
    assert default_preprocessing(model, dataset) == expected
    assert default_preprocessing(model, dataset, "torch") == "torch"


def test_a_resnet50_file_trains_with_what_evaluation_uses():
    # Regression: a ResNet-50 .keras file trained with x/255 while python -m ar2_tf.evaluate used "caffe".
    config = TrainConfig(dataset="imagenet", model="/models/resnet50.keras")
    assert plan_run(config).preprocessing == default_preprocessing(config.model, "imagenet") == "caffe"


def test_functions_map_uint8_pixels_to_float_inputs():
    pixels = np.array([[[[0, 128, 255]]]], np.uint8)
    np.testing.assert_allclose(get_preprocessor("unit")(pixels), [[[[0, 128 / 255, 1]]]], rtol=1e-5)
    np.testing.assert_allclose(get_preprocessor("tf")(pixels), [[[[-1, 128 / 127.5 - 1, 1]]]], atol=1e-6)
    assert tuple(PREPROCESSORS) == NAMES == ("unit", "caffe", "tf", "torch", "none")  # a function per checked name
    with pytest.raises(UserError, match="unknown preprocessing"):
        get_preprocessor("imagenet")


# --- The user's own mean/std ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("mean, std", [(CIFAR_MEAN, CIFAR_STD), ("127.5", "63.75"), ("120", "60,61.5,62"),
                                       ("-10.5,0,300", "0.5")])
def test_meanstd_equals_numpy(mean, std):
    pixels = np.random.default_rng(0).integers(0, 256, (2, 5, 4, 3), dtype=np.uint8)
    expected = (pixels.astype(np.float64) - np.array(mean.split(","), float)) / np.array(std.split(","), float)
    spec = preprocessing_spec("meanstd", mean, std)
    got = get_preprocessor(spec)(pixels)
    assert got.dtype == tf.float32 and got.shape == pixels.shape
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-6, atol=1e-5)


def test_the_flags_build_one_canonical_spec_that_reads_back_unchanged():
    assert preprocessing_spec("meanstd", CIFAR_MEAN, CIFAR_STD) == CIFAR_SPEC
    assert preprocessing_spec("meanstd", " 125.3, 123 ,113.9", "63,62.1,66.7") == CIFAR_SPEC
    assert preprocessing_spec("meanstd", "0.1234567", "1e3") == "meanstd:0.1234567:1000"  # no digits lost
    assert check_preprocessing(CIFAR_SPEC) == CIFAR_SPEC
    assert check_preprocessing("meanstd:125.30,123.0,113.9:63,62.10,66.7") == CIFAR_SPEC
    assert default_preprocessing("m.keras", "cifar10", CIFAR_SPEC) == CIFAR_SPEC
    assert preprocessing_spec("torch") == "torch" and preprocessing_spec(None) is None
    assert preprocessing_spec(CIFAR_SPEC) == CIFAR_SPEC  # a spec from a config file is a --preprocessing value too


@pytest.mark.parametrize("name, mean, std, message", [
    ("meanstd", None, None, "needs both `mean` and `std` (missing: `mean` and `std`)"),
    ("meanstd", CIFAR_MEAN, None, "needs both `mean` and `std` (missing: `std`)"),
    (None, CIFAR_MEAN, CIFAR_STD, "`mean`/`std` only go with `preprocessing` meanstd (no `preprocessing`"),
    ("unit", None, "63", "`mean`/`std` only go with `preprocessing` meanstd (`preprocessing` unit was given)"),
    ("meanstd", "125,123", CIFAR_STD, "the `mean` of a meanstd preprocessing must be 1 or 3 comma-separated finite"),
    ("meanstd", "1,2,3,4", CIFAR_STD, "the `mean` of a meanstd preprocessing must be 1 or 3"),
    ("meanstd", "inf", CIFAR_STD, "the `mean` of a meanstd preprocessing must be 1 or 3 comma-separated finite"),
    ("meanstd", "red", CIFAR_STD, "the `mean` of a meanstd preprocessing must be"),
    ("meanstd", CIFAR_MEAN, "0", "the `std` of a meanstd preprocessing must be 1 or 3 comma-separated numbers > 0"),
    ("meanstd", CIFAR_MEAN, "63,-62.1,66.7", "the `std` of a meanstd preprocessing must be 1 or 3 comma-separated "
                                             "numbers > 0"),
    ("meanstd", CIFAR_MEAN, "nan", "the `std` of a meanstd preprocessing must be 1 or 3 comma-separated numbers > 0"),
    ("meanstd", CIFAR_MEAN, "", "the `std` of a meanstd preprocessing must be"),
    ("imagenet", None, None, "unknown preprocessing 'imagenet'; choose one of: caffe, none, tf, torch, unit. Or your "
                             "own statistics: `preprocessing` meanstd:125.3,123,113.9:63,62.1,66.7"),
])
def test_bad_flags_are_user_errors(name, mean, std, message):
    with pytest.raises(UserError) as error:
        preprocessing_spec(name, mean, std)
    assert message in str(error.value) and "\n" not in str(error.value)


@pytest.mark.parametrize("spec, message", [
    ("meanstd", "preprocessing meanstd needs the training set's statistics: pass `preprocessing` meanstd:125.3,"),
    ("meanstd:125", "is not meanstd:MEAN:STD"), ("meanstd:1:2:3", "is not meanstd:MEAN:STD"),
    ("meanstd:1,2:3", "the `mean` of a meanstd preprocessing must be 1 or 3"),
    ("meanstd:1:0,1,1", "the `std` of a meanstd preprocessing must be 1 or 3 comma-separated numbers > 0"),
    ("meanstd:1:", "the `std` of a meanstd preprocessing must be"),
])
def test_bad_specs_are_user_errors_wherever_they_are_read(spec, message):
    for read in (get_preprocessor, check_preprocessing, lambda s: default_preprocessing("m.keras", "demo", s)):
        with pytest.raises(UserError) as error:
            read(spec)
        assert message in str(error.value) and "\n" not in str(error.value)


def test_train_and_tuning_flags_put_the_spec_in_the_run_config():
    from tuning.__main__ import build_parser as tuning_parser
    from tuning.__main__ import search_from_args

    flags = ["--preprocessing", "meanstd", "--mean", CIFAR_MEAN, "--std", CIFAR_STD]
    config = train.config_from_args(train.build_parser().parse_args(flags))
    assert config.preprocessing == CIFAR_SPEC and plan_run(config).preprocessing == CIFAR_SPEC
    assert search_from_args(tuning_parser().parse_args(flags)).train.preprocessing == CIFAR_SPEC
    assert train.config_from_args(train.build_parser().parse_args([])).preprocessing is None  # default: by model
    with pytest.raises(UserError, match="needs both `mean` and `std`"):
        search_from_args(tuning_parser().parse_args(flags[:2]))


# --- Models that carry their own preprocessing layers ---------------------------------------------------------------

def _classifier(*first, num_classes=6, input_shape=(32, 32, 3)):
    """A small CAM-able conv net whose first layers are `first` (then Conv, Conv, GAP, Dense)."""
    keras.utils.set_random_seed(0)
    inputs = x = keras.Input(input_shape)
    for layer in first:
        x = layer(x)
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="conv1")(x)
    x = keras.layers.Conv2D(12, 3, strides=2, padding="same", activation="relu", name="features")(x)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    return keras.Model(inputs, keras.layers.Dense(num_classes, activation="softmax", name="classes")(x))


def _nested():
    # A keras.applications-style base inside an outer model: its Rescaling is the first layer of the network.
    base = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Rescaling(1 / 127.5, offset=-1),
                             keras.layers.Conv2D(8, 3, name="conv1")])
    return keras.Sequential([keras.Input((32, 32, 3)), base, keras.layers.GlobalAveragePooling2D(),
                             keras.layers.Dense(6, activation="softmax")])


CARRYING = {
    "rescaling": lambda: _classifier(keras.layers.Rescaling(1 / 255)),
    "normalization": lambda: _classifier(keras.layers.Normalization(mean=[125.3, 123.0, 113.9],
                                                                    variance=[63.0**2, 62.1**2, 66.7**2])),
    "resize then rescaling": lambda: _classifier(keras.layers.Resizing(32, 32), keras.layers.Rescaling(1 / 255)),
    "nested base": _nested,
}
PLAIN = {
    "tiny classifier": lambda: tiny_classifier(6, (32, 32, 3)),
    "rescaling after a conv": lambda: _classifier(keras.layers.Conv2D(3, 1), keras.layers.Rescaling(1 / 255)),
}


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
@pytest.mark.parametrize("name, expected", [(name, True) for name in CARRYING] + [(name, False) for name in PLAIN])
def test_models_with_their_own_rescaling_or_normalization_are_detected(tmp_path, name, expected, suffix):
    model = {**CARRYING, **PLAIN}[name]()
    path = str(tmp_path / f"model{suffix}")
    model.save(path)
    assert model_carries_preprocessing(model) is expected  # the built model
    assert model_carries_preprocessing(path) is expected  # the file, from its saved config
    assert default_preprocessing(path, "imagenet") == ("none" if expected else "caffe")
    assert default_preprocessing(path, "cifar10", "unit") == "unit"  # an explicit choice still wins


@needs_resnet20
def test_the_shared_resnet20_file_still_gets_x_over_255():
    assert not model_carries_preprocessing(RESNET20)
    assert plan_run(TrainConfig(dataset="cifar10", model=RESNET20)).preprocessing == "unit"


def test_unreadable_or_missing_files_fall_back_to_the_dataset(tmp_path):
    broken = tmp_path / "broken.keras"
    broken.write_bytes(b"PK\x03\x04 truncated download")
    for path in (str(broken), str(tmp_path / "missing.h5"), str(tmp_path)):
        assert not model_carries_preprocessing(path)
        assert default_preprocessing(path, "imagenet") == "caffe"


@pytest.fixture(scope="module")
def rescaling_model(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("models") / "rescaling.keras")
    _classifier(keras.layers.Rescaling(1 / 255)).save(path)
    return path


def test_a_run_on_a_rescaling_model_feeds_raw_pixels_unless_told_otherwise(rescaling_model, tmp_path):
    out = str(tmp_path / "run")
    assert run_main(train.main, TINY_TRAIN_FLAGS + ["--model", rescaling_model, "--out", out]) == 0
    with open(os.path.join(out, "report.json")) as file:
        report = json.load(file)
    assert report["preprocessing"] == "none" and report["config"]["preprocessing"] is None
    given = train.config_from_args(train.build_parser().parse_args(["--model", rescaling_model,
                                                                    "--preprocessing", "tf"]))
    assert plan_run(given).preprocessing == "tf"


def test_evaluating_a_rescaling_model_file_feeds_raw_pixels_unless_told_otherwise(rescaling_model):
    setup = EvaluationSetup(dataset="demo", corruptions=("brightness",), severities=(1,), test_size=24)
    images, labels = next(iter(load_dataset("demo", None, 1, 24).test.batch(1000)))
    model = keras.saving.load_model(rescaling_model, compile=False)
    for given, inputs in ((None, tf.cast(images, tf.float32)), ("unit", tf.cast(images, tf.float32) / 255.0)):
        results = run_evaluation([rescaling_model], setup, preprocessing=given, cache_dir=None, verbose=0)
        entry = results["models"]["rescaling"]
        assert entry["preprocessing"] == (given or "none")
        expected = 100.0 * np.mean(np.argmax(model(inputs, training=False), -1) != labels.numpy())
        assert entry["clean"] == pytest.approx(expected)
