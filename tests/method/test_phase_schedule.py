"""The public Keras path of `RepairModel`: `PhaseSchedule` in a user's `fit`, validation, and what `fit` refuses."""

import warnings

import keras
import numpy as np
import pytest

from ar2_tf.errors import UserError
from ar2_tf.method.schedule import PhaseSchedule
from tests.helpers import frozen_base_classifier, repair_batches, tiny_repair_model


def test_a_user_fit_runs_n_refinement_then_m_finetuning_epochs_each_iteration():
    model = tiny_repair_model()
    schedule = PhaseSchedule(refine_steps=1, finetune_steps=2)
    model.fit(repair_batches(2), epochs=6, verbose=0, callbacks=[schedule])
    assert [phase for _, phase in schedule.phases_run] == ["refine", "finetune", "finetune"] * 2


def test_a_batch_schedule_needs_one_iteration_per_epoch():
    model = tiny_repair_model()
    schedule = PhaseSchedule(refine_steps=2, finetune_steps=1, unit="batch")
    model.fit(repair_batches(3).repeat(), epochs=2, steps_per_epoch=3, verbose=0, callbacks=[schedule])
    assert [phase for _, phase in schedule.phases_run] == ["refine", "refine", "finetune"] * 2
    with pytest.raises(UserError, match="steps_per_epoch=3"):
        tiny_repair_model().fit(repair_batches(4), epochs=1, verbose=0,
                                callbacks=[PhaseSchedule(refine_steps=2, finetune_steps=1, unit="batch")])


@pytest.mark.parametrize("arguments", [dict(refine_steps=0, finetune_steps=0), dict(refine_steps=-1),
                                       dict(unit="step")])
def test_a_schedule_that_cannot_run_is_refused(arguments):
    with pytest.raises(UserError):
        PhaseSchedule(**arguments)


def test_fit_without_a_schedule_fine_tunes_and_says_so_unless_a_phase_was_chosen():
    model = tiny_repair_model()
    with pytest.warns(UserWarning, match="PhaseSchedule"):
        model.fit(repair_batches(1), epochs=1, verbose=0)
    assert model.phase == "finetune"
    model.set_phase("refine")
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        warnings.filterwarnings("ignore", message=".*shuffle=True.*")  # Keras' note on datasets
        history = model.fit(repair_batches(1), epochs=1, verbose=0)
    assert history.history["align_loss"][0] > 0


def test_refinement_of_a_frozen_base_is_refused_and_fine_tuning_its_head_is_not():
    from ar2_tf.method.repair_model import RepairModel

    model = RepairModel(frozen_base_classifier(4, (16, 16, 3)), k=2)
    model.compile(optimizer=keras.optimizers.SGD(0.1))
    with pytest.raises(UserError, match="frozen"):
        model.fit(repair_batches(1), epochs=1, verbose=0, callbacks=[PhaseSchedule(1, 1)])
    model.fit(repair_batches(1), epochs=1, verbose=0, callbacks=[PhaseSchedule(0, 1)])


def test_validation_measures_the_classifier_on_both_views_or_on_clean_images():
    model = tiny_repair_model()
    model.fit(repair_batches(2), epochs=1, verbose=0, callbacks=[PhaseSchedule(1, 1)])
    results = model.evaluate(repair_batches(2), verbose=0, return_dict=True)
    (clean, corrupted), labels = _views(repair_batches(2))
    for view, name in ((clean, "clean_accuracy"), (corrupted, "corrupted_accuracy")):
        predicted = np.argmax(model.classifier.predict(view, verbose=0), axis=-1)
        assert results[name] == pytest.approx(np.mean(predicted == labels))
    images_only = repair_batches(2).map(lambda views, y: (views[0], y))
    clean_only = model.evaluate(images_only, verbose=0, return_dict=True)
    assert set(clean_only) == {"ce_loss", "clean_accuracy"}
    assert clean_only["clean_accuracy"] == results["clean_accuracy"]
    history = model.fit(repair_batches(2), epochs=1, verbose=0, validation_data=repair_batches(2),
                        callbacks=[PhaseSchedule(1, 1)])
    assert {"val_clean_accuracy", "val_corrupted_accuracy", "val_ce_loss"} <= set(history.history)


def _views(batches):
    clean, corrupted, labels = [], [], []
    for (c, k), y in batches:
        clean.append(c.numpy())
        corrupted.append(k.numpy())
        labels.append(y.numpy())
    return (np.concatenate(clean), np.concatenate(corrupted)), np.concatenate(labels)
