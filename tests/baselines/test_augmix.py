"""AugMix: the ops against Pillow, per-image choices, the pipeline, the JSD loss against NumPy, the model."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from ar2_tf.baselines.augmix import (
    EXCLUDED_OPS,
    OPS,
    AugMixConfig,
    apply_op,
    apply_ops,
    augment_and_mix,
    augmix_pipeline,
    sample_mixing,
)
from ar2_tf.baselines.augmix_model import AugMixModel, augmix_loss, jensen_shannon_consistency
from ar2_tf.data.pipelines import repair_pipeline
from ar2_tf.method.repair_model import FINETUNE
from ar2_tf.runs import methods
from ar2_tf.runs.config import PRESETS, RepairConfig, TrainConfig
from tests.helpers import assert_keras_round_trip, tiny_classifier

# The original's default list (google-research/augmix augmentations.py), in its order.
ORIGINAL_OPS = ("autocontrast", "equalize", "posterize", "rotate", "solarize", "shear_x", "shear_y",
                "translate_x", "translate_y")


def random_images(count=6, size=16, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (count, size, size, 3), dtype=np.uint8)


def per_image(values):
    return tf.constant(np.asarray(values, np.float32))


# --- the Jensen-Shannon consistency loss ------------------------------------------------------------

def softmax(logits):
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


def numpy_jsd(logits):
    """The original's loss term, written out: mean over the batch of ⅓ Σ_i KL(p_i ‖ clamp(M))."""
    probabilities = [softmax(np.asarray(l, np.float64)) for l in logits]
    mixture = sum(probabilities) / 3
    total = 0
    for p in probabilities:
        p_log_p = np.where(p > 0, p * np.log(np.where(p > 0, p, 1)), 0.0)
        total = total + np.sum(p_log_p - p * np.log(np.clip(mixture, 1e-7, 1)), axis=-1)
    return np.mean(total / 3), mixture


@pytest.mark.parametrize("scale", [1.0, 30.0])
def test_jsd_equals_a_direct_numpy_computation(scale):
    rng = np.random.default_rng(1)
    logits = [(rng.normal(size=(3, 5)) * scale).astype(np.float32) for _ in range(3)]
    expected, mixture = numpy_jsd(logits)
    if scale > 1:
        assert mixture.min() < 1e-7  # the clamp is what this case tests
    np.testing.assert_allclose(float(jensen_shannon_consistency(*logits)), expected, rtol=1e-4, atol=1e-7)


def test_jsd_is_zero_for_identical_predictions_and_the_loss_adds_ce_plus_twelve_jsd():
    rng = np.random.default_rng(2)
    logits = [rng.normal(size=(4, 6)).astype(np.float32) for _ in range(3)]
    assert float(jensen_shannon_consistency(logits[0], logits[0], logits[0])) == pytest.approx(0.0, abs=1e-6)
    labels = np.array([0, 5, 2, 3])
    total, cross_entropy, consistency = augmix_loss(labels, *logits)
    expected_ce = -np.mean(np.log(softmax(logits[0].astype(np.float64))[np.arange(4), labels]))
    assert float(cross_entropy) == pytest.approx(expected_ce, rel=1e-5)
    assert float(total) == pytest.approx(expected_ce + 12 * numpy_jsd(logits)[0], rel=1e-4)


# --- the operations ------------------------------------------------------------------------------------

def test_only_the_original_default_ops_exist_and_sampling_uses_no_other():
    assert tuple(OPS) == ORIGINAL_OPS
    assert not set(OPS) & set(EXCLUDED_OPS)
    assert set(EXCLUDED_OPS) == {"brightness", "color", "contrast", "sharpness"}
    choice = sample_mixing(tf.constant([3, 4], tf.int64), 2000, AugMixConfig())
    assert set(np.unique(choice["ops"].numpy())) == set(range(len(OPS)))
    levels = choice["levels"].numpy()
    assert levels.min() >= 0.1 and levels.max() < 3.0
    assert set(np.unique(choice["depths"].numpy())) == {1, 2, 3}
    assert set(np.unique(choice["signs"].numpy())) == {-1.0, 1.0}
    np.testing.assert_allclose(choice["weights"].numpy().sum(axis=1), 1.0, rtol=1e-5)
    mix = choice["mix"].numpy()
    assert mix.min() >= 0 and mix.max() <= 1 and 0.4 < mix.mean() < 0.6  # Beta(1, 1)


@pytest.mark.parametrize("name", ORIGINAL_OPS)
def test_each_op_keeps_uint8_and_shape_eagerly_and_in_dataset_map(name):
    images = random_images()
    levels, signs = per_image([0.5, 1.0, 1.5, 2.0, 2.5, 2.9]), per_image([1, -1, 1, -1, 1, -1])
    eager = apply_op(images, name, levels, signs)
    mapped = tf.data.Dataset.from_tensors((images, levels, signs)).map(lambda x, l, s: apply_op(x, name, l, s))
    graph = next(iter(mapped))
    assert eager.dtype == tf.uint8 and eager.shape == images.shape
    np.testing.assert_array_equal(eager.numpy(), graph.numpy())
    assert not np.array_equal(eager.numpy(), images)  # every op changes random images at these levels


def pillow_op(image, name, level, sign):
    """The original's op definitions (augmentations.py) at a fixed level and sign, on Pillow."""
    from PIL import Image, ImageOps

    size = image.shape[0]
    picture = Image.fromarray(image)
    affine = {"shear_x": (1, sign * level * 0.3 / 10, 0, 0, 1, 0),
              "shear_y": (1, 0, 0, sign * level * 0.3 / 10, 1, 0),
              "translate_x": (1, 0, sign * int(level * size / 3 / 10), 0, 1, 0),
              "translate_y": (1, 0, 0, 0, 1, sign * int(level * size / 3 / 10))}
    if name in affine:
        result = picture.transform((size, size), Image.AFFINE, affine[name], resample=Image.BILINEAR)
    elif name == "rotate":
        result = picture.rotate(sign * int(level * 30 / 10), resample=Image.BILINEAR)
    elif name == "posterize":
        result = ImageOps.posterize(picture, 4 - int(level * 4 / 10))
    elif name == "solarize":
        result = ImageOps.solarize(picture, 256 - int(level * 256 / 10))
    else:
        result = getattr(ImageOps, name)(picture)
    return np.asarray(result)


@pytest.mark.parametrize("name", ORIGINAL_OPS)
def test_ops_match_pillow_away_from_the_border(cifar10_test, name):
    pytest.importorskip("PIL")
    images = cifar10_test[0][:16]
    for level in (0.7, 2.9):
        signs = np.where(np.arange(16) % 2, -1.0, 1.0)
        ours = apply_op(images, name, per_image([level] * 16), per_image(signs)).numpy().astype(int)
        reference = np.stack([pillow_op(x, name, level, s) for x, s in zip(images, signs)]).astype(int)
        # Border pixels whose bilinear sample falls partly outside differ: Pillow and TF treat the fill differently.
        inner = np.abs(ours - reference)[:, 3:-3, 3:-3]
        assert inner.max() <= 1, (name, level, inner.max())


def test_each_image_gets_its_own_op_and_minus_one_keeps_it():
    images = random_images(4)
    levels, signs = per_image([2.0, 2.0, 2.0, 2.0]), per_image([1, 1, -1, 1])
    out = apply_ops(images, tf.constant([-1, 1, 3, 8]), levels, signs).numpy()
    np.testing.assert_array_equal(out[0], images[0])
    for row, name in ((1, "equalize"), (2, "rotate"), (3, "translate_y")):
        alone = apply_op(images[row:row + 1], name, levels[row:row + 1], signs[row:row + 1]).numpy()[0]
        np.testing.assert_array_equal(out[row], alone)


def test_augment_and_mix_is_per_image_seeded_and_graph_safe():
    images = np.repeat(random_images(1, 32), 8, axis=0)  # one image eight times
    seed = tf.constant([5, 6], tf.int64)
    views = augment_and_mix(images, seed).numpy()
    assert views.dtype == np.float32 and views.shape == images.shape
    assert views.min() >= 0 and views.max() <= 255
    # Per image, not per batch (keras.layers.AugMix's way): copies of one image get different views.
    assert len({view.tobytes() for view in views}) == 8
    np.testing.assert_array_equal(augment_and_mix(images, seed).numpy(), views)
    assert not np.array_equal(augment_and_mix(images, tf.constant([5, 7], tf.int64)).numpy(), views)
    mapped = tf.data.Dataset.from_tensors(images).map(lambda x: augment_and_mix(x, seed))
    np.testing.assert_allclose(next(iter(mapped)).numpy(), views, atol=1e-4)


def test_pipeline_batches_are_those_of_the_repair_pipeline_and_resume_exactly():
    images, labels = random_images(20), np.arange(20) % 4
    split = tf.data.Dataset.from_tensor_slices((images, labels))
    common = dict(batch_size=6, preprocessing="unit", seed=3, total_batches=5)
    augmix_batches = list(augmix_pipeline(split, **common))  # two data epochs of 3 batches (2 images dropped)
    repair_batches = list(repair_pipeline(split, corruption="contrast", severity=1, **common))
    assert len(augmix_batches) == len(repair_batches) == 5
    for (views, y), ((clean, _), y_repair) in zip(augmix_batches, repair_batches):
        np.testing.assert_array_equal(views[0].numpy(), clean.numpy())
        np.testing.assert_array_equal(y.numpy(), y_repair.numpy())
        assert views[1].shape == views[0].shape and not np.array_equal(views[1].numpy(), views[2].numpy())
    resumed = next(iter(augmix_pipeline(split, start_batch=4, **common)))
    for part, expected in zip(resumed[0], augmix_batches[4][0]):
        np.testing.assert_array_equal(part.numpy(), expected.numpy())


# --- the model and its place among the methods ------------------------------------------------------------

def augmix_batches(count=3, batch=8, seed=0):
    rng = np.random.default_rng(seed)
    views = tuple(rng.uniform(size=(count * batch, 16, 16, 3)).astype(np.float32) for _ in range(3))
    return tf.data.Dataset.from_tensor_slices((views, rng.integers(0, 4, count * batch))).batch(batch)


def test_train_step_updates_every_variable_and_reports_finite_losses():
    model = AugMixModel(tiny_classifier(), jsd_weight=12.0)
    model.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9))
    before = [v.numpy().copy() for v in model.classifier.trainable_variables]
    history = model.fit(augmix_batches(), epochs=1, verbose=0).history
    assert all(not np.array_equal(b, v.numpy()) for b, v in zip(before, model.classifier.trainable_variables))
    assert {"ce_loss", "jsd_loss", "loss", "clean_accuracy", "augmix_accuracy"} <= set(history)
    assert np.isfinite(history["loss"][0]) and history["jsd_loss"][0] > 0
    with pytest.raises(ValueError, match="has no phase 'refine'"):
        model.set_phase("refine")


def test_get_config_round_trips_through_a_keras_file(tmp_path):
    model = AugMixModel(tiny_classifier(), jsd_weight=6.0)
    x = np.random.default_rng(0).uniform(size=(2, 16, 16, 3)).astype(np.float32)
    assert_keras_round_trip(model, str(tmp_path / "augmix.keras"), {"AugMixModel": AugMixModel}, x,
                            jsd_weight=6.0, head=model.head)


def test_augmix_gets_ar2s_whole_budget_all_fine_tuning():
    repair = RepairConfig(iterations=3, refine_steps=1, finetune_steps=2, step_unit="batch")
    schedule = methods.schedule_of(TrainConfig(method="augmix", repair=repair))
    assert schedule.total_steps == 9 and {schedule.phase_at(p) for p in range(9)} == {FINETUNE}
    assert methods.schedule_of(TrainConfig(method="finetune", repair=repair)).total_steps == 6


def test_run_repair_trains_augmix_end_to_end_on_the_demo(tmp_path):
    from ar2_tf.runs.repair_run import run_repair

    model_path = str(tmp_path / "tiny.keras")
    tiny_classifier(num_classes=6, input_shape=(32, 32, 3)).save(model_path)
    config = TrainConfig(dataset="demo", model=model_path, method="augmix", train_size=64, test_size=32,
                         batch_size=32, repair=PRESETS["tiny"])
    report = run_repair(config, str(tmp_path / "run"), verbose=0)
    assert report["phases_run"] == 2 and report["config"]["method"] == "augmix"
    # The report records the schedule AugMix ran: T·(N+M) fine-tuning steps, no refinement.
    assert (report["schedule"]["refine_steps"], report["schedule"]["finetune_steps"]) == (0, 2)
    assert not np.array_equal(keras.saving.load_model(str(tmp_path / "run" / "model.keras")).get_weights()[0],
                              keras.saving.load_model(model_path).get_weights()[0])
