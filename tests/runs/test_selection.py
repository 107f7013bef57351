"""Which weights a run keeps (`ar2_tf.runs.selection`): the best qualifying phase on validation data."""

import json
import os

import keras
import numpy as np
import pytest

from ar2_tf.errors import UserError
from ar2_tf.method.schedule import Schedule, ScheduleCallback
from ar2_tf.runs.selection import (
    PRETRAINED,
    STATE,
    PhaseSelection,
    breaks_clean_constraint,
    kept_description,
    select_phase,
)
from tests.helpers import repair_batches, tiny_repair_model

IMAGES = 1000


def errors(clean, corrupted):
    """A model's validation errors, its clean error `clean` % made of the first images: two models' verdicts
    differ on the images between their two errors, so the paired rise equals the difference of errors."""
    correct = np.arange(IMAGES) >= round(clean * IMAGES / 100)
    return {"clean": clean, "corrupted": corrupted, "clean_correct": correct}


def phase(rise, corrupted):
    return {"corrupted": corrupted, "clean_rise": {"rise": rise}}


@pytest.mark.parametrize("phases, expected", [
    ([phase(0.5, 30), phase(2, 20), phase(0.9, 25), phase(-1, 28)], 2),  # +2 breaks the 1-point limit
    ([phase(1, 30), phase(1, 30)], 0),  # a tie keeps the earlier phase
    ([phase(1.01, 5), phase(10, 1)], None),  # nothing qualifies: the pretrained weights
    ([], None),
])
def test_select_phase_keeps_the_lowest_corrupted_error_within_the_clean_limit(phases, expected):
    assert select_phase(phases, max_clean_drop=1.0) == expected


class ScriptedValidation:
    """Stands in for a ValidationSet: returns the given errors, one per call, in order."""

    def __init__(self, *sequence):
        self.sequence = list(sequence)

    def errors(self, classifier, with_verdicts=False):
        errors = dict(self.sequence.pop(0))
        return errors if with_verdicts else {key: errors[key] for key in ("clean", "corrupted")}


class WeightsAtEpochEnd(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.weights = {}

    def on_epoch_end(self, epoch, logs=None):
        self.weights[epoch] = self.model.classifier.get_weights()


def fit(model, selection, epochs=4, initial_epoch=0):
    schedule = Schedule(iterations=2, refine_steps=1, finetune_steps=1, unit="epoch")
    recorder = WeightsAtEpochEnd()
    model.fit(repair_batches(count=2).repeat(), epochs=epochs, initial_epoch=initial_epoch, steps_per_epoch=2,
              callbacks=[ScheduleCallback(schedule), recorder, selection], verbose=0)
    return recorder.weights


def assert_same_weights(a, b):
    assert all(np.array_equal(x, y) for x, y in zip(a, b))


def test_the_kept_phase_is_the_best_qualifying_one_and_its_weights_come_back(tmp_path):
    model = tiny_repair_model()
    validation = ScriptedValidation(errors(10, 50), errors(10.5, 30), errors(12, 20), errors(10.9, 25), errors(9, 28))
    selection = PhaseSelection(validation, model.classifier, str(tmp_path), max_clean_drop=1.0,
                               logdir=str(tmp_path / "logs"))
    weights = fit(model, selection)
    summary = selection.restore_kept(model.classifier)
    assert summary["kept"] == 2 and [p["qualifies"] for p in summary["phases"]] == [True, False, True, True]
    assert [p["phase"] for p in summary["phases"]] == ["refine", "finetune", "refine", "finetune"]
    assert_same_weights(model.classifier.get_weights(), weights[2])
    assert "warning" not in summary and os.listdir(tmp_path / "logs")  # validation curves for TensorBoard
    report = {"validation": summary}
    assert kept_description(report).startswith("kept: epoch 3 of 4 (refine); validation error clean 10.90")
    rises = [p["clean_rise"] for p in summary["phases"]]
    assert [round(r["rise"], 6) for r in rises] == [0.5, 2.0, 0.9, -1.0] and all(r["images"] == IMAGES for r in rises)
    assert "clean-error rise on 1000 validation images: +0.90 points" in kept_description(report)


def test_when_no_phase_qualifies_the_pretrained_weights_are_kept_with_a_warning(tmp_path):
    model = tiny_repair_model()
    pretrained = model.classifier.get_weights()
    validation = ScriptedValidation(errors(10, 50), *[errors(25, 5)] * 4)
    selection = PhaseSelection(validation, model.classifier, str(tmp_path), max_clean_drop=1.0)
    fit(model, selection)
    summary = selection.restore_kept(model.classifier)
    assert summary["kept"] == PRETRAINED and "pretrained weights are kept" in summary["warning"]
    assert_same_weights(model.classifier.get_weights(), pretrained)
    assert kept_description({"validation": summary}).startswith("kept: the pretrained weights. warning:")


def test_a_resumed_run_keeps_its_selection_and_records_the_phase_it_restored(tmp_path):
    model = tiny_repair_model()
    first = PhaseSelection(ScriptedValidation(errors(10, 50), errors(10.2, 40)), model.classifier, str(tmp_path),
                           max_clean_drop=1.0)
    fit(model, first, epochs=1)
    fit(model, keras.callbacks.Callback(), epochs=2, initial_epoch=1)  # epoch 1 trained, then killed unrecorded
    # Resume from the checkpoint after epoch 2 (2 completed): epoch 1's errors are measured on restore.
    resumed = PhaseSelection(ScriptedValidation(errors(10.1, 35), errors(10.3, 30), errors(15, 1)),
                             model.classifier, str(tmp_path), max_clean_drop=1.0, initial_epoch=2)
    weights = fit(model, resumed, epochs=4, initial_epoch=2)
    summary = resumed.restore_kept(model.classifier)
    assert [p["epoch"] for p in summary["phases"]] == [0, 1, 2, 3]
    assert summary["baseline"] == {"clean": 10, "corrupted": 50} and summary["kept"] == 2
    assert_same_weights(model.classifier.get_weights(), weights[2])
    with open(tmp_path / STATE) as file:
        assert json.load(file)["kept"] == 2


def test_a_selection_recorded_without_verdicts_is_refused_on_resume_with_the_fix(tmp_path):
    model = tiny_repair_model()
    with open(tmp_path / STATE, "w") as file:  # as an older version wrote it: errors, no per-image verdicts
        json.dump({"max_clean_drop": 1.0, "baseline": {"clean": 10, "corrupted": 50}, "phases": [],
                   "kept": PRETRAINED}, file)
    resumed = PhaseSelection(ScriptedValidation(), model.classifier, str(tmp_path), max_clean_drop=1.0,
                             initial_epoch=1)
    with pytest.raises(UserError, match="older version of ar2-tf.*re-run with `force`"):
        resumed.on_train_begin()


def test_the_clean_error_guard_reads_the_runs_own_limit():
    report = {"config": {"max_clean_drop": 1.0}, "before": {"clean": 7.4}, "after": {"clean": 8.5}}
    assert breaks_clean_constraint(report)
    assert not breaks_clean_constraint({**report, "config": {"max_clean_drop": 2.0}})
    assert not breaks_clean_constraint({**report, "after": {"clean": 8.3}})
    assert not breaks_clean_constraint({"config": {}, "before": {}, "after": {}})
