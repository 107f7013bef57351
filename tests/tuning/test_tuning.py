"""`python -m tuning` on the demo data: search, best.json, the test split never read, the clean constraint, bad input."""

import glob
import json
import os

import numpy as np
import pytest
import tensorflow as tf

from ar2_tf import train
from ar2_tf.cli import run_main
from ar2_tf.errors import UserError
from ar2_tf.evaluation.validation import ValidationSet, split_validation
from ar2_tf.runs.config import RepairConfig
from tests.helpers import frozen_base_classifier
from tests.tuning.searches import TINY, metric, trials_of
from tuning import __main__ as tuning_cli
from tuning import search as search_module
from tuning.hypermodel import AR2HyperModel, parse_fixes
from tuning.objective import OBJECTIVE_NAME, constrained_robust_accuracy


@pytest.fixture(scope="module")
def finished_search(tmp_path_factory, tiny_model):
    out = str(tmp_path_factory.mktemp("search") / "tune")
    assert run_main(tuning_cli.main, TINY + ["--model", tiny_model, "--max-trials", "2", "--out", out]) == 0
    return out


def event_tags(folder):
    tags = set()
    for path in glob.glob(os.path.join(folder, "events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(path):
            tags.update(value.tag for value in event.summary.value)
    return tags


def test_search_runs_scores_every_trial_and_logs_hparams(finished_search):
    trials = trials_of(finished_search)
    assert sorted(trials) == ["0", "1"] and {t["status"] for t in trials.values()} == {"COMPLETED"}
    with open(os.path.join(finished_search, "baseline.json")) as file:
        baseline = json.load(file)
    for trial in trials.values():
        drop = baseline["clean_accuracy"] - metric(trial, "clean_accuracy")
        assert metric(trial, "clean_drop") == pytest.approx(drop)
        assert metric(trial, OBJECTIVE_NAME) == pytest.approx(
            constrained_robust_accuracy(metric(trial, "corrupted_accuracy"), drop, 2.0))
    # The paper's defaults, scored under the same budget, with RepairConfig's learning rates.
    with open(os.path.join(finished_search, "defaults.json")) as file:
        defaults = json.load(file)
    assert defaults["hyperparameters"]["k"] == 3
    assert defaults["hyperparameters"]["refine_learning_rate"] == RepairConfig().refine_learning_rate
    assert defaults["hyperparameters"]["finetune_learning_rate"] == RepairConfig().finetune_learning_rate
    # TensorBoard: the experiment's hparams config at the root, one session per trial with its metrics.
    logs = os.path.join(finished_search, "logs")
    assert "_hparams_/experiment" in event_tags(logs)
    for trial_id in ("0", "1"):
        tags = event_tags(os.path.join(logs, trial_id, "execution0"))
        assert {"_hparams_/session_start_info", OBJECTIVE_NAME, "clean_accuracy"} <= tags


def test_best_json_is_the_best_trial_and_training_reads_it(finished_search, tmp_path):
    trials = trials_of(finished_search)
    best_trial = max(trials.values(), key=lambda t: metric(t, OBJECTIVE_NAME))
    best_path = os.path.join(finished_search, "best.json")
    with open(best_path) as file:
        best = json.load(file)
    for name, value in best_trial["hyperparameters"]["values"].items():
        assert best[name] == value
    args = train.build_parser().parse_args(["--config", best_path, "--dataset", "demo"])
    config = train.config_from_args(args)
    assert config.repair.k == best["k"] and config.repair.alpha == best["alpha"]
    assert config.repair.refine_steps == best["refine_steps"] and config.repair.iterations == best["iterations"]
    assert config.model == best["model"] and config.batch_size == 32
    # And a repair run trains with it.
    out = str(tmp_path / "repair")
    code = run_main(train.main, ["--config", best_path, "--dataset", "demo", "--train-size", "96",
                                 "--test-size", "48", "--out", out, "--verbose", "0"])
    assert code == 0
    with open(os.path.join(out, "report.json")) as file:
        report = json.load(file)
    assert report["config"]["repair"]["alpha"] == best["alpha"]
    assert report["phases_run"] == best["iterations"] * (best["refine_steps"] + best["finetune_steps"])


def test_a_different_search_in_the_same_folder_is_refused(finished_search, tiny_model, capsys):
    flags = TINY + ["--model", tiny_model, "--max-trials", "2", "--out", finished_search]
    assert run_main(tuning_cli.main, [*flags, "--max-clean-drop", "5"]) == 2
    assert "holds a different search (changed: max_clean_drop)" in capsys.readouterr().err


def _poisoned_test_split(touched):
    def touch(image, label):
        touched.append(True)
        raise AssertionError("the test split was read")

    def poison(image, label):
        image, label = tf.py_function(touch, [image, label], [tf.uint8, tf.int64])
        return image, label

    return tf.data.Dataset.from_tensor_slices((np.zeros((4, 32, 32, 3), np.uint8), np.zeros(4, np.int64))).map(poison)


def test_the_objective_never_reads_the_test_split(monkeypatch, tmp_path, tiny_model):
    touched = []
    with pytest.raises(Exception):  # the poison works: reading the split fails and is recorded
        next(iter(_poisoned_test_split(touched)))
    assert touched
    touched.clear()
    real_load = search_module.load_dataset

    def load_with_poisoned_test(*args, **kwargs):
        import dataclasses

        return dataclasses.replace(real_load(*args, **kwargs), test=_poisoned_test_split(touched))

    monkeypatch.setattr(search_module, "load_dataset", load_with_poisoned_test)
    out = str(tmp_path / "tune")
    assert run_main(tuning_cli.main, TINY + ["--model", tiny_model, "--max-trials", "1", "--out", out]) == 0
    assert not touched
    assert [t["status"] for t in trials_of(out).values()] == ["COMPLETED"]


def test_validation_is_a_seeded_disjoint_part_of_the_training_pool():
    pool = tf.data.Dataset.from_tensor_slices((np.arange(20)[:, None], np.arange(20)))
    train_split, validation = split_validation(pool, 20, 6, seed=3)
    train_labels = [int(y) for _, y in train_split]
    validation_labels = [int(y) for _, y in validation]
    assert len(validation_labels) == 6 and sorted(train_labels + validation_labels) == list(range(20))
    assert [int(y) for _, y in split_validation(pool, 20, 6, seed=3)[1]] == validation_labels
    assert [int(y) for _, y in split_validation(pool, 20, 6, seed=4)[1]] != validation_labels
    with pytest.raises(UserError, match="`val_size`"):
        split_validation(pool, 20, 20, seed=0)


def test_penalty_puts_every_violating_trial_below_every_feasible_one():
    assert constrained_robust_accuracy(61.0, 1.5, 2.0) == 61.0
    assert constrained_robust_accuracy(0.0, 2.0, 2.0) == 0.0  # on the limit still counts as feasible
    assert constrained_robust_accuracy(100.0, 2.01, 2.0) < 0.0
    assert constrained_robust_accuracy(80.0, 40.0, 5.0) == pytest.approx(80 - 100 - 35)
    assert constrained_robust_accuracy(80.0, 6.0, 5.0) > constrained_robust_accuracy(80.0, 9.0, 5.0)


def test_a_trial_that_breaks_the_clean_constraint_is_not_chosen(monkeypatch, tmp_path, tiny_model):
    # Only N is searched (0, 1, 2: three trials cover it). Training runs for real; the measured
    # accuracies are scripted per N so that N=2 has the best corrupted accuracy but costs 40 points
    # of clean accuracy, more than the 5 allowed.
    scripted = {0: (89.0, 55.0), 1: (88.0, 60.0), 2: (50.0, 80.0)}  # N -> (clean, corrupted)
    current = {}
    real_fit = AR2HyperModel.fit

    def fit(self, hp, model, *args, **kwargs):
        current["N"] = hp.get("refine_steps")
        return real_fit(self, hp, model, *args, **kwargs)

    def accuracies(self, classifier):
        clean, corrupted = scripted[current["N"]] if current else (90.0, 50.0)  # before any trial: pretrained
        return {"clean_accuracy": clean, "corrupted_accuracy": corrupted}

    monkeypatch.setattr(AR2HyperModel, "fit", fit)
    monkeypatch.setattr(ValidationSet, "accuracies", accuracies)
    out = str(tmp_path / "tune")
    fixes = ["k=2", "alpha=1.0", "M=1", "refine_lr=0.01", "finetune_lr=0.01"]
    flags = TINY + ["--model", tiny_model, "--max-trials", "3", "--max-clean-drop", "5", "--no-compare-defaults",
                    "--out", out] + [f"--fix={fix}" for fix in fixes]
    assert run_main(tuning_cli.main, flags) == 0
    trials = trials_of(out).values()
    by_n = {t["hyperparameters"]["values"]["refine_steps"]: t for t in trials}
    assert sorted(by_n) == [0, 1, 2]
    assert max(trials, key=lambda t: metric(t, "corrupted_accuracy")) is by_n[2]  # unconstrained best
    assert metric(by_n[2], OBJECTIVE_NAME) == pytest.approx(80 - 100 - 35)
    with open(os.path.join(out, "best.json")) as file:
        assert json.load(file)["refine_steps"] == 1
    with open(os.path.join(out, "summary.json")) as file:
        assert json.load(file)["best"]["metrics"]["corrupted_accuracy"] == 60.0


def test_fix_flags_are_typed_and_checked():
    assert parse_fixes(["k=3", "alpha=1", "N=0", "refine_lr=0.001", "cam_normalization=none"], 6) == {
        "k": 3, "alpha": 1.0, "refine_steps": 0, "refine_learning_rate": 0.001, "cam_normalization": "none"}
    for bad, message in [("gamma=1", "`fixed` takes NAME=VALUE"), ("k", "`fixed` takes NAME=VALUE"),
                         ("iterations=3", "T follows from `epochs_budget`"), ("k=two", "needs a int"),
                         ("k=7", "exceeds the 6 classes of the dataset; pass `fixed` k=6")]:
        with pytest.raises(UserError, match=message):
            parse_fixes([bad], 6)
    with pytest.raises(UserError, match="not both 0"):
        parse_fixes(["N=0", "M=0"], 6)


@pytest.mark.parametrize("flags, message", [
    (["--tuner", "grid"], "unknown tuner 'grid'"),
    (["--corruption", "all"], "needs one target corruption"),
    (["--val-severities", "0-2"], "severity must be an integer from 1 to 5"),
    (["--val-size", "0"], "--val-size must be at least 1"),
    (["--batch-size", "128"], "fewer than one batch of 128"),
    (["--fix", "gamma=2"], "--fix takes NAME=VALUE"),
])
def test_bad_input_gets_one_clear_message_and_exit_2(tmp_path, capsys, tiny_model, flags, message):
    code = run_main(tuning_cli.main, TINY + ["--model", tiny_model, "--out", str(tmp_path / "tune")] + flags)
    error = capsys.readouterr().err
    assert code == 2 and message in error and "Traceback" not in error


def test_a_model_refinement_cannot_train_is_refused_before_the_baseline(tmp_path, capsys):
    model = str(tmp_path / "frozen.keras")
    frozen_base_classifier().save(model)
    code = run_main(tuning_cli.main, TINY + ["--model", model, "--out", str(tmp_path / "tune")])
    error = capsys.readouterr().err
    assert code == 2 and "every layer up to the feature map 'base' is frozen" in error and "Traceback" not in error
    assert not (tmp_path / "tune" / "baseline.json").exists()
