"""The tuning objective: corrupted-validation accuracy under a clean-accuracy constraint.

Every trial is scored on a validation split carved from the *training* data
(`split_validation`); the test split is never read. With

    corrupted = accuracy (%) on the validation images at the target corruption,
                averaged over the validation severities (default 1-5)
    drop      = clean accuracy (%) of the pretrained model − clean accuracy (%) of the trial,
                both on the same clean validation images
    D         = --max-clean-drop (points)

the objective Keras Tuner maximises is

    constrained_robust_accuracy = corrupted                       if drop <= D
                                = corrupted − 100 − (drop − D)    otherwise

Accuracies lie in [0, 100], so every trial that keeps the constraint scores
at least 0 and beats every trial that breaks it (which scores below 0); among
violators, smaller violations rank higher, which gives model-based tuners a
slope back towards the feasible region. A trial whose training diverged (NaN
or Inf) is scored with both accuracies at 0.
"""

import dataclasses

import keras_tuner
import numpy as np
import tensorflow as tf

from ar2_tf.data.pipelines import corrupted_pipeline
from ar2_tf.data.seeds import EVAL_BATCH_SIZE
from ar2_tf.errors import UserError
from ar2_tf.evaluation.error_rates import error_rate, preprocessed

OBJECTIVE_NAME = "constrained_robust_accuracy"
OBJECTIVE = keras_tuner.Objective(OBJECTIVE_NAME, direction="max")
PENALTY = 100.0  # larger than any accuracy gap, so violators always rank below feasible trials


def constrained_robust_accuracy(corrupted_accuracy, clean_drop, max_clean_drop) -> float:
    """The objective above, for accuracies and drops in percentage points."""
    if clean_drop <= max_clean_drop:
        return float(corrupted_accuracy)
    return float(corrupted_accuracy - PENALTY - (clean_drop - max_clean_drop))


def split_validation(split, size, val_size, seed):
    """Splits `size` unbatched examples into (train, validation) by a seeded random choice of
    `val_size` validation indices; the two are disjoint and the same for a given seed."""
    if not 0 < val_size < size:
        raise UserError(f"--val-size must be between 1 and {size - 1} (the training images available), "
                        f"got {val_size}.")
    is_validation = np.zeros(size, bool)
    is_validation[np.random.default_rng(seed).choice(size, val_size, replace=False)] = True
    mask = tf.constant(is_validation)

    def keep(wanted, count):
        chosen = split.enumerate().filter(lambda index, _: tf.equal(tf.gather(mask, index), wanted))
        # filter() hides the size; the training pipeline needs it to lay out its data epochs.
        return chosen.map(lambda _, example: example).apply(tf.data.experimental.assert_cardinality(count))

    return keep(False, size - val_size), keep(True, val_size)


@dataclasses.dataclass
class ValidationSet:
    """Clean and corrupted validation images, materialised once (uint8) so every trial is
    scored on identical pixels.

    Attributes:
        images, labels: the clean validation split.
        corrupted: {severity: uint8 images}, the same images at the target corruption.
        preprocessing: the model's input preprocessing name.
    """

    images: np.ndarray
    labels: np.ndarray
    corrupted: dict
    preprocessing: str
    batch_size: int = EVAL_BATCH_SIZE

    @classmethod
    def from_split(cls, split, *, corruption, severities, preprocessing, params, backend, seed, batch_size=EVAL_BATCH_SIZE):
        images, labels = (np.concatenate(parts) for parts in zip(*split.batch(1024).as_numpy_iterator()))
        corrupted = {}
        for severity in severities:
            # Corrupted once with stateless seeds; "none" keeps the 0..255 pixels.
            batches = corrupted_pipeline(tf.data.Dataset.from_tensor_slices((images, labels)),
                                         corruption=corruption, severity=severity,
                                         preprocessing="none", seed=seed, params=params, backend=backend)
            corrupted[severity] = np.concatenate([x.astype(np.uint8) for x, _ in batches.as_numpy_iterator()])
        return cls(images, labels, corrupted, preprocessing, batch_size)

    def _accuracy(self, classifier, images):
        batches = tf.data.Dataset.from_tensor_slices((images, self.labels)).batch(self.batch_size)
        return 100.0 - error_rate(classifier, preprocessed(batches, self.preprocessing))

    def accuracies(self, classifier) -> dict:
        """{"clean_accuracy", "corrupted_accuracy"} in %; corrupted is the mean over severities."""
        corrupted = [self._accuracy(classifier, images) for images in self.corrupted.values()]
        return {"clean_accuracy": self._accuracy(classifier, self.images),
                "corrupted_accuracy": float(np.mean(corrupted))}


@dataclasses.dataclass
class ConstrainedObjective:
    """Scores a classifier: the trial metrics Keras Tuner records, objective included."""

    validation: ValidationSet
    baseline_clean_accuracy: float  # the pretrained model's clean validation accuracy (%)
    max_clean_drop: float  # D, in points

    def __call__(self, classifier, diverged=False) -> dict:
        if diverged:
            measured = {"clean_accuracy": 0.0, "corrupted_accuracy": 0.0}
        else:
            measured = self.validation.accuracies(classifier)
        drop = self.baseline_clean_accuracy - measured["clean_accuracy"]
        return {OBJECTIVE_NAME: constrained_robust_accuracy(measured["corrupted_accuracy"], drop,
                                                            self.max_clean_drop),
                **measured, "clean_drop": drop, "diverged": float(diverged)}
