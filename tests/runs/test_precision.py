"""Mixed precision: the trained copy computes in float16/bfloat16 with a float32 head (pooling to logits), float32 CAMs,
loss scaling for both optimizers under float16, and a tiny run that ends finite and saves float32."""

import glob
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from ar2_tf.method.head import find_head
from ar2_tf.method.repair_model import RepairModel
from ar2_tf.runs import precision
from ar2_tf.runs.config import PRESETS, TrainConfig
from tests.helpers import scalars, tiny_classifier


@pytest.mark.parametrize("policy, compute", [("mixed_bfloat16", tf.bfloat16), ("mixed_float16", tf.float16)])
def test_copy_computes_in_half_precision_with_a_float32_head_and_float32_cams(policy, compute):
    classifier = tiny_classifier()
    copy = precision.with_policy(classifier, policy, precision.float32_layers(classifier, find_head(classifier)))
    assert {layer.name: layer.dtype_policy.name for layer in copy.layers[1:]} == {
        "conv1": policy, "bn1": policy, "features": policy, "pool": "float32", "classes": "float32"}
    for ours, theirs in zip(copy.get_weights(), classifier.get_weights()):
        np.testing.assert_array_equal(ours, theirs)
    model = RepairModel(copy, k=2)
    images = np.random.default_rng(0).random((3, 16, 16, 3)).astype("float32")
    features = model.backbone(images)
    cams = model.attention.maps(features, tf.constant([[0, 1]] * 3))
    assert features.dtype == compute and cams.dtype == tf.float32
    assert copy(images).dtype == tf.float32


def test_float16_wraps_both_optimizers_in_loss_scaling_and_steps_stay_finite():
    classifier = tiny_classifier()
    copy = precision.with_policy(classifier, "mixed_float16", precision.float32_layers(classifier, find_head(classifier)))
    trainer = RepairModel(copy, k=2)
    trainer.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.9))
    precision.configure_trainer(trainer, policy="mixed_float16", jit_compile=False)
    assert isinstance(trainer.optimizer, keras.optimizers.LossScaleOptimizer)
    assert isinstance(trainer.refine_optimizer, keras.optimizers.LossScaleOptimizer)
    assert float(trainer.refine_optimizer.inner_optimizer.learning_rate) == pytest.approx(0.05)
    images = np.random.default_rng(1).random((8, 16, 16, 3)).astype("float32")
    batches = tf.data.Dataset.from_tensor_slices(((images, images[::-1]), np.arange(8) % 4)).batch(4).repeat()
    before = [w.copy() for w in copy.get_weights()]
    for phase in ("refine", "finetune"):
        trainer.set_phase(phase)
        logs = trainer.fit(batches, steps_per_epoch=3, epochs=1, verbose=0).history
        assert all(np.isfinite(values[-1]) for values in logs.values())
    assert any(not np.array_equal(a, b) for a, b in zip(copy.get_weights(), before))


def test_bfloat16_gets_no_loss_scaling_and_no_flags_change_nothing():
    trainer = RepairModel(tiny_classifier(), k=2)
    trainer.compile(optimizer=keras.optimizers.SGD(0.01))
    optimizer = trainer.optimizer
    assert precision.configure_trainer(trainer) is trainer and trainer.optimizer is optimizer
    precision.configure_trainer(trainer, policy="mixed_bfloat16", jit_compile=True)
    assert type(trainer.optimizer) is keras.optimizers.SGD and trainer.jit_compile
    with pytest.raises(Exception, match="unknown mixed precision policy 'float8'"):
        precision.configure_trainer(trainer, policy="float8")


@pytest.mark.slow
def test_tiny_bfloat16_run_ends_finite_and_saves_a_float32_model(tmp_path):
    from ar2_tf.runs.repair_run import run_repair

    path = str(tmp_path / "model.keras")
    tiny_classifier(num_classes=6, input_shape=(32, 32, 3)).save(path)
    config = TrainConfig(dataset="demo", model=path, train_size=32, test_size=12, batch_size=8,
                         mixed_precision="mixed_bfloat16", repair=PRESETS["tiny"])
    report = run_repair(config, str(tmp_path / "run"), strategy="default", verbose=0)
    assert report["config"]["mixed_precision"] == "mixed_bfloat16"
    logged = scalars(str(tmp_path / "run"))
    assert logged["iteration/align_loss"] and np.all(np.isfinite(np.concatenate(list(logged.values()))))
    saved = keras.saving.load_model(str(tmp_path / "run" / "model.keras"), compile=False)
    assert {layer.dtype_policy.name for layer in saved.layers} == {"float32"}
    assert glob.glob(os.path.join(tmp_path, "run", "checkpoints", "ckpt-*.index"))
