"""`ar2_tf.runs.plan`: one run resolves its config, method, model preprocessing and data once, whichever door it
comes in by (`python -m ar2_tf.train`, `ar2_tf.repair`), and every later step reads the plan."""

import collections
import dataclasses
import json
import os

import numpy as np
import pytest

import ar2_tf
from ar2_tf import train
from ar2_tf.cli import run_main
from ar2_tf.data import preprocessing
from ar2_tf.runs import config as config_module
from ar2_tf.runs import methods, plan, splits
from ar2_tf.runs.config import TrainConfig
from ar2_tf.runs.plan import plan_run
from tests.helpers import TINY_TRAIN_FLAGS, tiny_classifier


@pytest.fixture
def calls(monkeypatch):
    """Counts the resolutions a run may do once: {what: [arguments of each call]}."""
    seen = collections.defaultdict(list)

    def spy(name, module, attribute):
        real = getattr(module, attribute)

        def counted(*args, **kwargs):
            seen[name].append(args)
            return real(*args, **kwargs)
        monkeypatch.setattr(module, attribute, counted)

    spy("model file read", preprocessing, "model_carries_preprocessing")
    spy("preprocessing resolved", preprocessing, "default_preprocessing")
    spy("registry looked up", methods, "get_method")
    spy("registry looked up", config_module, "get_method")  # the name config.py imported
    spy("config checked", config_module, "check_run")
    spy("config checked", plan, "check_run")  # the name plan.py imported
    spy("data loaded", splits, "load_dataset")
    return seen


def _assert_resolved_once(seen, model_file):
    assert len(seen["config checked"]) == 1
    assert len(seen["registry looked up"]) == 1
    assert len(seen["preprocessing resolved"]) == 1
    assert [args[0] for args in seen["model file read"]] == [model_file]
    loads = seen["data loaded"]
    assert loads and len(set(map(repr, loads))) == len(loads)  # no source loaded twice with the same arguments


def test_a_train_command_run_resolves_each_thing_once(tmp_path, calls, capsys):
    model = str(tmp_path / "model.keras")
    tiny_classifier(num_classes=6, input_shape=(32, 32, 3)).save(model)  # the demo has 6 classes
    out = str(tmp_path / "run")
    assert run_main(train.main, TINY_TRAIN_FLAGS + ["--model", model, "--out", out, "--max-clean-drop", "100"]) == 0
    _assert_resolved_once(calls, model)
    with open(os.path.join(out, "report.json")) as file:
        report = json.load(file)
    assert report["preprocessing"] == "unit" and report["schedule"]["iterations"] == 1  # the tiny preset
    calls.clear()  # a finished run is reused: checked once, nothing of the model or data resolved
    assert run_main(train.main, TINY_TRAIN_FLAGS + ["--model", model, "--out", out, "--max-clean-drop", "100"]) == 0
    assert "reusing its report" in capsys.readouterr().out
    assert len(calls["config checked"]) == 1 and not calls["model file read"] and not calls["data loaded"]


def test_a_repair_call_resolves_each_thing_once(tmp_path, calls):
    rng = np.random.default_rng(0)
    images, labels = rng.integers(0, 256, (40, 16, 16, 3), dtype=np.uint8), np.arange(40) % 3
    result = ar2_tf.repair(tiny_classifier(num_classes=3), (images, labels), corruption="gaussian_noise",
                           out=str(tmp_path / "run"), preset="tiny", batch_size=8, verbose=0, max_clean_drop=100.0)
    _assert_resolved_once(calls, result.report["config"]["model"])


def test_the_plan_keeps_what_it_resolved_and_a_like_plan_shares_the_model_preprocessing(tmp_path, calls):
    config = TrainConfig()  # the demo's resnet8, built by the run
    first = plan_run(config, str(tmp_path / "a"))
    assert first.out == os.path.abspath(tmp_path / "a") and first.method is methods.METHODS["ar2"]
    assert first.preprocessing == first.preprocessing == "unit"
    assert len(calls["preprocessing resolved"]) == 1
    fog = plan_run(dataclasses.replace(config, corruption="fog", method="finetune"), None, like=first)
    assert fog.preprocessing == "unit" and len(calls["preprocessing resolved"]) == 1
    assert fog.schedule.refine_steps == 0 and first.schedule.refine_steps == config.repair.refine_steps
    other = plan_run(dataclasses.replace(config, preprocessing="tf"), like=first)  # not the same: its own
    assert other.preprocessing == "tf"
    trial = first.with_repair(dataclasses.replace(config.repair, iterations=7))
    assert trial.schedule.iterations == 7 and trial.preprocessing == "unit"
    assert len(calls["preprocessing resolved"]) == 2  # first's, other's; never fog's nor the trial's
