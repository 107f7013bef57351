"""RepairModel: which variables each phase changes, the frozen reference, the fine-tuning ablation, frozen layers."""

import keras
import numpy as np
import pytest

from ar2_tf.method import repair_model as repair_module
from ar2_tf.method.repair_model import FINETUNE, REFINE, RepairModel
from ar2_tf.method.schedule import Schedule, ScheduleCallback
from tests.helpers import (
    assert_keras_round_trip,
    frozen_base_classifier,
    repair_batches,
    tiny_repair_model,
    with_batchnorm_statistics,
)


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


# --- Frozen layers: trained never, BatchNorm statistics included (ar2_tf.method.head's docstring) -------------------

def transfer_model(frozen=("base",)):
    """`frozen_base_classifier` for `repair_batches`, BatchNorm statistics random (so a fresh layer's zeros and
    ones cannot hide an update) and exactly the layers named in `frozen` frozen: "base", or layers inside it."""
    classifier = with_batchnorm_statistics(frozen_base_classifier(num_classes=4, input_shape=(16, 16, 3)))
    base = classifier.get_layer("base")
    base.trainable = "base" not in frozen
    for name in frozen:
        if name != "base":
            base.get_layer(name).trainable = False
    model = RepairModel(classifier, k=2)
    model.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9))
    return model


def weights_of(model, *names):
    """{path: value} of every weight (trainable or not) of the layers `names` inside the base or the classifier."""
    classifier, base = model.classifier, model.classifier.get_layer("base")
    layers = [base.get_layer(name) if name in {layer.name for layer in base.layers} else classifier.get_layer(name)
              for name in names]
    return {weight.path: np.array(weight.numpy()) for layer in layers for weight in layer.weights}


def unchanged(before, model, *names):
    now = weights_of(model, *names)
    return {path: np.array_equal(value, now[path]) for path, value in before.items()}


def test_finetuning_a_frozen_base_trains_the_head_alone():
    model = transfer_model(frozen=("base",))
    trainable = [v.path for v in model.classifier.trainable_variables]
    base, head = weights_of(model, "conv1", "bn1", "features"), weights_of(model, "classes")
    assert any("moving_mean" in path for path in base) and any("moving_variance" in path for path in base)
    run_phase(model, FINETUNE)
    assert all(unchanged(base, model, "conv1", "bn1", "features").values())  # bit-identical, statistics included
    assert not any(unchanged(head, model, "classes").values())
    assert [v.path for v in model.classifier.trainable_variables] == trainable  # the user's flags, as they were


def test_ar2_on_a_partly_frozen_base_trains_the_rest_and_keeps_the_frozen_layers():
    model = transfer_model(frozen=("conv1", "bn1"))
    frozen = weights_of(model, "conv1", "bn1")
    features, head = weights_of(model, "features"), weights_of(model, "classes")
    run_phase(model, REFINE)
    assert not any(unchanged(features, model, "features").values())
    assert all(unchanged(head, model, "classes").values())  # refinement never trains the head
    run_phase(model, FINETUNE)
    assert not any(unchanged(head, model, "classes").values())
    assert all(unchanged(frozen, model, "conv1", "bn1").values())  # through both phases


@pytest.mark.parametrize("phase", [REFINE, FINETUNE])
def test_the_same_steps_move_a_trainable_batchnorms_statistics(phase):
    """The counterpart of the two tests above: their frozen statistics stay only because the layer is frozen."""
    model = transfer_model(frozen=("conv1",))
    statistics = {path: value for path, value in weights_of(model, "bn1").items() if "moving" in path}
    run_phase(model, phase)
    assert not any(unchanged(statistics, model, "bn1").values())
