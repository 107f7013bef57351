"""One config for every command: presets, per-dataset defaults and their precedence (`ar2_tf.runs.config`)."""

import subprocess
import sys

import pytest

from ar2_tf import train
from ar2_tf.errors import UserError
from ar2_tf.runs.config import DATASET_DEFAULTS, PRESETS, resolve
from tests.helpers import ROOT


def test_presets_and_dataset_defaults_are_complete_without_importing_a_command():
    # Regression: the demo preset was added to PRESETS when ar2_tf.train was imported.
    code = ("from ar2_tf.runs.config import DATASET_DEFAULTS, PRESETS; from ar2_tf.choices import DATASETS; "
            "assert all(d['preset'] in PRESETS for d in DATASET_DEFAULTS.values()), PRESETS; "
            "assert tuple(DATASET_DEFAULTS) == DATASETS, DATASET_DEFAULTS")  # defaults for every dataset
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)
    assert {"cifar-paper", "imagenet-paper", "demo", "tiny"} <= set(PRESETS)


def test_train_and_tuning_resolve_the_same_defaults():
    # Regression: `--model resnet20` pre-trained in python -m ar2_tf.train but was refused by python -m tuning.
    from tuning.__main__ import build_parser, search_from_args

    for flags in ([], ["--model", "resnet20"], ["--dataset", "cifar10", "--model", "m.h5"]):
        trained = train.config_from_args(train.build_parser().parse_args(flags))
        tuned = search_from_args(build_parser().parse_args(flags)).train
        for field in ("dataset", "model", "pretrain_epochs", "batch_size", "corruption", "severity", "seed",
                      "preprocessing", "corruption_backend"):
            assert getattr(tuned, field) == getattr(trained, field), (flags, field)
    assert trained.pretrain_epochs == 0  # a model file is never pre-trained
    assert search_from_args(build_parser().parse_args(["--model", "resnet20"])).train.pretrain_epochs == 8


def test_precedence_dataset_then_preset_then_config_file_then_flags():
    config = resolve("imagenet", None, {"k": 7, "batch_size": 16}, {"batch_size": 8}, {"alpha": 0.3})
    assert (config.model, config.batch_size) == (DATASET_DEFAULTS["imagenet"]["model"], 8)
    assert (config.repair.k, config.repair.alpha) == (7, 0.3)
    assert config.repair.iterations == PRESETS["imagenet-paper"].iterations


@pytest.mark.parametrize("arguments, message", [
    (("demo", "fast"), "unknown preset 'fast'"),
    (("demo", None, {"lerning_rate": 1}), "unknown config field(s): lerning_rate"),
    (("demo", None, None, {"severity": 9}), "severity must be an integer from 1 to 5"),
])
def test_bad_values_are_user_errors(arguments, message):
    with pytest.raises(UserError, match=message.replace("(", r"\(").replace(")", r"\)")):
        resolve(*arguments)
