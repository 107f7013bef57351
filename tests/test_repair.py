"""RepairModel: which variables each phase changes, the frozen reference, the fine-tuning ablation."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from ar2_tf.method import repair_model as repair_module
from ar2_tf.method.repair_model import FINETUNE, REFINE, RepairModel
from ar2_tf.method.schedule import Schedule, ScheduleCallback
from tests.conftest import tiny_classifier


def batches(count=4, batch=8, seed=0):
    rng = np.random.default_rng(seed)
    clean = rng.uniform(size=(count * batch, 16, 16, 3)).astype(np.float32)
    corrupted = np.clip(clean + rng.normal(0, 0.3, clean.shape), 0, 1).astype(np.float32)
    labels = rng.integers(0, 4, count * batch)
    return tf.data.Dataset.from_tensor_slices(((clean, corrupted), labels)).batch(batch)


def make_model(**kwargs):
    model = RepairModel(tiny_classifier(), k=2, **kwargs)
    model.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9))
    return model


def snapshot(variables):
    return [np.array(v.numpy()) for v in variables]


def changed(before, variables):
    return [not np.array_equal(b, v.numpy()) for b, v in zip(before, variables)]


def run_phase(model, phase, steps=3):
    model.set_phase(phase)
    model.fit(batches(steps), epochs=1, verbose=0)


def test_refinement_updates_the_backbone_only_and_never_the_head():
    model = make_model()
    # Fine-tune first so momentum and the head have moved: refinement must still not touch the head.
    run_phase(model, FINETUNE)
    head, backbone = snapshot(model.head_variables), snapshot(model.backbone_variables)
    run_phase(model, REFINE)
    assert not any(changed(head, model.head_variables))
    assert all(changed(backbone, model.backbone_variables))


def test_finetuning_updates_head_and_backbone():
    model = make_model()
    head, backbone = snapshot(model.head_variables), snapshot(model.backbone_variables)
    run_phase(model, FINETUNE)
    assert all(changed(head, model.head_variables)) and all(changed(backbone, model.backbone_variables))


def test_reference_model_never_changes():
    model = make_model()
    reference = snapshot(model.reference.weights)
    run_phase(model, REFINE)
    run_phase(model, FINETUNE)
    assert not any(changed(reference, model.reference.weights))
    assert not model.reference.trainable_variables


def test_phase_switch_reuses_compiled_functions():
    model = make_model()
    run_phase(model, REFINE)
    run_phase(model, FINETUNE)
    functions = dict(model._phase_functions)
    run_phase(model, REFINE)
    assert model._phase_functions == functions and model.train_function is functions[REFINE]


def count_alignment_calls(monkeypatch):
    calls = []
    original = repair_module.cam_alignment_loss

    def counting(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(repair_module, "cam_alignment_loss", counting)
    return calls


@pytest.mark.parametrize("refine_steps, expect_cams", [(0, False), (1, True)])
def test_finetune_only_schedule_never_computes_cams(monkeypatch, refine_steps, expect_cams):
    calls = count_alignment_calls(monkeypatch)
    model = make_model()
    schedule = Schedule(iterations=2, refine_steps=refine_steps, finetune_steps=1, unit="batch")
    model.fit(batches().repeat(), callbacks=[ScheduleCallback(schedule)], verbose=0, **schedule.fit_arguments(4))
    assert bool(calls) == expect_cams


def test_get_config_round_trips_through_a_keras_file(tmp_path):
    model = make_model(alpha=0.5, topk_from="reference")
    x = np.random.default_rng(0).uniform(size=(2, 16, 16, 3)).astype(np.float32)
    path = str(tmp_path / "repair.keras")
    model.save(path)
    loaded = keras.saving.load_model(path, custom_objects={"RepairModel": RepairModel}, compile=False)
    assert (loaded.k, loaded.alpha, loaded.topk_from, loaded.head) == (2, 0.5, "reference", model.head)
    np.testing.assert_allclose(loaded(x).numpy(), model(x).numpy(), rtol=1e-5)
    np.testing.assert_allclose(loaded.reference(x).numpy(), model.reference(x).numpy(), rtol=1e-5)
