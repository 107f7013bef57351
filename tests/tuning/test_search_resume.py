"""A search survives being killed: completed trials are not trained again, Keras Tuner's files land whole, and
Hyperband continues trials from their parents."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from keras_tuner.src import utils as keras_tuner_utils

from ar2_tf.cli import run_main
from tests.helpers import ROOT
from tests.tuning.searches import TINY, metric, trials_of
from tuning import __main__ as tuning_cli
from tuning import search as search_module
from tuning.hypermodel import AR2HyperModel


def _record_training(monkeypatch):
    """The hyperparameter values of every trial trained from now on, in order."""
    trained = []
    real_fit = AR2HyperModel.fit

    def fit(self, hp, model, *args, **kwargs):
        trained.append(dict(hp.values))
        return real_fit(self, hp, model, *args, **kwargs)

    monkeypatch.setattr(AR2HyperModel, "fit", fit)
    return trained


@pytest.mark.slow
def test_search_resumes_after_sigkill_without_rerunning_completed_trials(monkeypatch, tmp_path, tiny_model):
    out = str(tmp_path / "tune")
    flags = TINY + ["--model", tiny_model, "--max-trials", "3", "--no-compare-defaults", "--out", out]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    process = subprocess.Popen([sys.executable, "-m", "tuning", *flags], cwd=ROOT, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    try:
        while not any(t["status"] == "COMPLETED" for t in trials_of(out).values()):
            assert process.poll() is None, "the search ended before it could be killed"
            assert time.time() < deadline, "no trial completed within 300 s"
            time.sleep(0.2)
        process.send_signal(signal.SIGKILL)
        process.wait()
    finally:
        if process.poll() is None:
            process.kill()
    completed = {trial_id: trial for trial_id, trial in trials_of(out).items() if trial["status"] == "COMPLETED"}
    assert 1 <= len(completed) < 3
    trained = _record_training(monkeypatch)
    assert run_main(tuning_cli.main, flags) == 0
    trials = trials_of(out)
    assert sorted(trials) == ["0", "1", "2"] and {t["status"] for t in trials.values()} == {"COMPLETED"}
    # Not re-run: the resume trained only the other trials, and a completed trial's record is unchanged.
    assert len(trained) == 3 - len(completed)
    for trial_id, trial in completed.items():
        assert trial["hyperparameters"]["values"] not in trained
        assert trials[trial_id] == trial
    assert os.path.exists(os.path.join(out, "best.json"))


class _Killed(BaseException):
    """Stands in for SIGKILL: not an Exception, so no handler on the way out writes anything."""


# As trial 0 ends, Keras Tuner writes: its trial.json with status COMPLETED, oracle.json still
# listing it as ongoing (Oracle.end_trial), oracle.json without it and the tuner's tuner0.json
# (Tuner.save). A kill after any of the first three leaves a completed trial that the files
# written last do not yet account for.
@pytest.mark.slow
@pytest.mark.parametrize("killed_after", [["trial.json"], ["trial.json", "oracle.json"],
                                          ["trial.json", "oracle.json", "oracle.json"]],
                         ids=["trial", "trial+oracle", "trial+oracle+oracle"])
def test_a_kill_while_a_trial_ends_does_not_train_it_again(monkeypatch, tmp_path, tiny_model, killed_after):
    out = str(tmp_path / "tune")
    flags = TINY + ["--model", tiny_model, "--max-trials", "1", "--no-compare-defaults", "--out", out]
    real_save_json = search_module._save_json_atomic  # every Keras Tuner JSON write during the search
    written = []  # the files written since a trial.json first said COMPLETED

    def save_json(path, obj):
        result = real_save_json(path, obj)
        if written or (os.path.basename(path) == "trial.json" and obj.get("status") == "COMPLETED"):
            written.append(os.path.basename(path))
            if len(written) == len(killed_after):
                raise _Killed(path)
        return result

    monkeypatch.setattr(search_module, "_save_json_atomic", save_json)
    with pytest.raises(_Killed):
        run_main(tuning_cli.main, flags)
    monkeypatch.setattr(search_module, "_save_json_atomic", real_save_json)
    assert written == killed_after
    completed = trials_of(out)
    assert list(completed) == ["0"] and completed["0"]["status"] == "COMPLETED"
    trained = _record_training(monkeypatch)
    assert run_main(tuning_cli.main, flags) == 0
    assert trained == []  # the search's one trial had completed: the resume trains nothing
    assert trials_of(out) == completed
    with open(os.path.join(out, "best.json")) as file:
        assert json.load(file)["k"] == completed["0"]["hyperparameters"]["values"]["k"]


def test_keras_tuner_files_written_during_a_search_land_whole(monkeypatch, tmp_path):
    path = str(tmp_path / "oracle.json")
    real_save_json = keras_tuner_utils.save_json
    real_replace = os.replace

    def killed_before_the_rename(source, target):
        raise _Killed(target)

    with search_module._atomic_keras_tuner_files():
        keras_tuner_utils.save_json(path, {"end_order": ["0"]})  # the call Keras Tuner's Stateful.save makes
        monkeypatch.setattr(os, "replace", killed_before_the_rename)
        with pytest.raises(_Killed):
            keras_tuner_utils.save_json(path, {"end_order": ["0", "1"]})
        monkeypatch.setattr(os, "replace", real_replace)
    with open(path) as file:
        assert json.load(file) == {"end_order": ["0"]}  # the earlier state, whole, not a truncated file
    assert keras_tuner_utils.save_json is real_save_json


@pytest.mark.slow
def test_hyperband_continues_trials_from_their_parents(tmp_path, tiny_model):
    out = str(tmp_path / "tune")
    flags = TINY[:TINY.index("--epochs-budget")] + TINY[TINY.index("--epochs-budget") + 2:]
    assert run_main(tuning_cli.main, flags + ["--model", tiny_model, "--tuner", "hyperband", "--epochs-budget", "2",
                                              "--hyperband-factor", "2", "--fix", "N=0", "--fix", "M=1",
                                              "--no-compare-defaults", "--out", out]) == 0
    trials = trials_of(out).values()
    continued = [t for t in trials if "tuner/trial_id" in t["hyperparameters"]["values"]]
    assert continued and all(t["status"] == "COMPLETED" for t in trials)
    # A continued trial trained T = 2 iterations in all (1 from its parent, 1 more).
    assert all(metric(t, "iterations") == 2.0 for t in continued)
