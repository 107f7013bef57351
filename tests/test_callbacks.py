"""`ar2_tf.callbacks`: KeepBestPhase keeps what the selection rule of runs picks and restores it; the public
names resolve lazily from `ar2_tf`."""

import numpy as np
import pytest

from ar2_tf.runs.selection import PRETRAINED, select_phase
from tests.helpers import tiny_classifier


def _data(count=64, seed=0):
    """Noise whose brightest channel is the class (3: none), uint8."""
    rng = np.random.default_rng(seed)
    labels = np.arange(count) % 4
    x = rng.integers(0, 150, (count, 16, 16, 3))
    for channel in range(3):
        x[labels == channel, ..., channel] += 100
    return x.astype(np.uint8), labels.astype(np.int64)


class WeightsPerEpoch:
    """A callback recording the model's weights after every epoch (listed before KeepBestPhase)."""

    def __new__(cls):
        import keras

        class Recorder(keras.callbacks.Callback):
            def __init__(self):
                super().__init__()
                self.weights = []

            def on_epoch_end(self, epoch, logs=None):
                self.weights.append(self.model.get_weights())

        return Recorder()


def _fit(max_clean_drop, epochs=4):
    """A classifier trained a little, then `epochs` more, the last with a learning rate that ruins it."""
    import keras

    from ar2_tf.callbacks import KeepBestPhase

    x, y = _data(128)
    val = _data(48, seed=1)
    classifier = tiny_classifier(4, (16, 16, 3), seed=0)
    classifier.compile(optimizer=keras.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy")
    classifier.fit(x / 255.0, y, epochs=5, verbose=0)  # a model with something to lose
    start = classifier.get_weights()
    keep = KeepBestPhase(val, corruption="gaussian_noise", severity=3, preprocessing="unit",
                         max_clean_drop=max_clean_drop)
    recorder = WeightsPerEpoch()
    ruin = keras.callbacks.LambdaCallback(on_epoch_begin=lambda epoch, logs: epoch == epochs - 1 and (
        classifier.optimizer.learning_rate.assign(100.0)))
    history = classifier.fit(x / 255.0, y, epochs=epochs, verbose=0, callbacks=[ruin, recorder, keep])
    return classifier, keep, recorder, start, history


def test_the_kept_phase_is_the_rules_and_its_weights_are_restored():
    classifier, keep, recorder, _, history = _fit(max_clean_drop=100.0)
    assert len(keep.phases) == 4 and all(phase["qualifies"] for phase in keep.phases)
    assert len({phase["corrupted"] for phase in keep.phases}) > 1 and keep.kept != 3  # the ruined epoch is not kept
    assert keep.kept == select_phase(keep.phases, 100.0)
    assert keep.kept == int(np.argmin([phase["corrupted"] for phase in keep.phases]))
    for got, want in zip(classifier.get_weights(), recorder.weights[keep.kept]):
        np.testing.assert_array_equal(got, want)
    assert history.history["val_corrupted_error"] == [phase["corrupted"] for phase in keep.phases]


def test_with_no_phase_within_the_clean_limit_the_starting_weights_come_back_with_a_warning():
    with pytest.warns(UserWarning, match="no phase kept"):
        classifier, keep, _, start, _ = _fit(max_clean_drop=-100.0, epochs=2)
    assert keep.kept == PRETRAINED and not any(phase["qualifies"] for phase in keep.phases)
    for got, want in zip(classifier.get_weights(), start):
        np.testing.assert_array_equal(got, want)


def test_cam_panels_come_from_the_first_images_of_a_dataset(tmp_path):
    import tensorflow as tf

    from ar2_tf.callbacks import CAMImages

    x, y = _data(12)
    batches = tf.data.Dataset.from_tensor_slices((x.astype(np.float32), y)).batch(5)
    panels = CAMImages.from_dataset(str(tmp_path), batches, corruption="fog", severity=2, preprocessing="unit",
                                    count=8)
    np.testing.assert_array_equal(panels.clean.numpy(), x[:8])
    assert panels.corrupted.shape == (8, 16, 16, 3) and not np.array_equal(panels.corrupted.numpy(), x[:8])


def test_the_public_names_resolve_from_the_package():
    import ar2_tf
    from ar2_tf.callbacks import CAMImages, KeepBestPhase, PhaseSchedule
    from ar2_tf.data.pairs import corrupted_pairs
    from ar2_tf.evaluation.robustness import evaluate_robustness
    from ar2_tf.method.repair_model import RepairModel

    assert ar2_tf.RepairModel is RepairModel and ar2_tf.corrupted_pairs is corrupted_pairs
    assert ar2_tf.evaluate_robustness is evaluate_robustness
    assert (ar2_tf.callbacks.PhaseSchedule, ar2_tf.callbacks.KeepBestPhase, ar2_tf.callbacks.CAMImages) == (
        PhaseSchedule, KeepBestPhase, CAMImages)
    assert all(getattr(ar2_tf, name) is not None for name in ar2_tf.__all__)
    with pytest.raises(AttributeError):
        ar2_tf.no_such_name  # noqa: B018
