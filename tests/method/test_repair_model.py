"""RepairModel: which variables each phase changes, the frozen reference, the fine-tuning ablation."""

import numpy as np
import pytest

from ar2_tf.method import repair_model as repair_module
from ar2_tf.method.repair_model import FINETUNE, REFINE, RepairModel
from ar2_tf.method.schedule import Schedule, ScheduleCallback
from tests.helpers import assert_keras_round_trip, repair_batches, tiny_repair_model


def snapshot(variables):
    return [np.array(v.numpy()) for v in variables]


def changed(before, variables):
    return [not np.array_equal(b, v.numpy()) for b, v in zip(before, variables)]


def run_phase(model, phase, steps=3):
    model.set_phase(phase)
    model.fit(repair_batches(steps), epochs=1, verbose=0)


def test_refinement_updates_the_backbone_only_and_never_the_head():
    model = tiny_repair_model()
    # Fine-tune first so momentum and the head have moved: refinement must still not touch the head.
    run_phase(model, FINETUNE)
    head, backbone = snapshot(model.head_variables), snapshot(model.backbone_variables)
    run_phase(model, REFINE)
    assert not any(changed(head, model.head_variables))
    assert all(changed(backbone, model.backbone_variables))


def test_finetuning_updates_head_and_backbone():
    model = tiny_repair_model()
    head, backbone = snapshot(model.head_variables), snapshot(model.backbone_variables)
    run_phase(model, FINETUNE)
    assert all(changed(head, model.head_variables)) and all(changed(backbone, model.backbone_variables))


def test_reference_model_never_changes():
    model = tiny_repair_model()
    reference = snapshot(model.reference.weights)
    run_phase(model, REFINE)
    run_phase(model, FINETUNE)
    assert not any(changed(reference, model.reference.weights))
    assert not model.reference.trainable_variables


def test_phase_switch_reuses_compiled_functions():
    model = tiny_repair_model()
    run_phase(model, REFINE)
    run_phase(model, FINETUNE)
    functions = dict(model.phase_functions("fit", None))  # already built: `build` is never called
    run_phase(model, REFINE)
    assert model.phase_functions("fit", None) == functions and model.train_function is functions[REFINE]


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
    model = tiny_repair_model()
    schedule = Schedule(iterations=2, refine_steps=refine_steps, finetune_steps=1, unit="batch")
    model.fit(repair_batches().repeat(), callbacks=[ScheduleCallback(schedule)], verbose=0, **schedule.fit_arguments(4))
    assert bool(calls) == expect_cams


def test_get_config_round_trips_through_a_keras_file(tmp_path):
    model = tiny_repair_model(alpha=0.5, topk_from="reference")
    x = np.random.default_rng(0).uniform(size=(2, 16, 16, 3)).astype(np.float32)
    loaded = assert_keras_round_trip(model, str(tmp_path / "repair.keras"), {"RepairModel": RepairModel}, x,
                                     k=2, alpha=0.5, topk_from="reference", head=model.head)
    np.testing.assert_allclose(loaded.reference(x).numpy(), model.reference(x).numpy(), rtol=1e-5)
