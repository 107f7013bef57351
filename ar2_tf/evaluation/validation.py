"""Validation images carved from the training data: what repair runs select on and tuning scores with.

The test split is never read for a decision: a repair run keeps the phase with
the best corrupted validation error under a clean-error constraint
(`ar2_tf.runs.selection`), and a tuning search scores its trials on the same
kind of split (`tuning.objective`).
"""

import dataclasses

import numpy as np
import tensorflow as tf

from ar2_tf.data.pipelines import corrupted_pipeline
from ar2_tf.data.seeds import EVAL_BATCH_SIZE
from ar2_tf.errors import UserError
from ar2_tf.evaluation.error_rates import error_rate, preprocessed

MAX_DEFAULT_VAL_SIZE = 1000  # the default validation split: 10% of the training images, at most this many


def default_val_size(train_size: int) -> int:
    """10% of `train_size` training images, at most 1,000 (0 below 10 images: too few to carve)."""
    return min(MAX_DEFAULT_VAL_SIZE, train_size // 10)


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
    """Clean and corrupted validation images, materialised once (uint8) so every model is scored on
    identical pixels.

    Attributes:
        images, labels: the clean validation split.
        corrupted: {(corruption, severity): uint8 images}, the same images corrupted.
        preprocessing: the model's input preprocessing name.
    """

    images: np.ndarray
    labels: np.ndarray
    corrupted: dict
    preprocessing: str
    batch_size: int = EVAL_BATCH_SIZE

    @classmethod
    def from_split(cls, split, *, corruptions, severities, preprocessing, params, backend, seed):
        images, labels = (np.concatenate(parts) for parts in zip(*split.batch(1024).as_numpy_iterator()))
        corrupted = {}
        for corruption in corruptions:
            for severity in severities:
                # Corrupted once with stateless seeds; "none" keeps the 0..255 pixels.
                batches = corrupted_pipeline(tf.data.Dataset.from_tensor_slices((images, labels)),
                                             corruption=corruption, severity=severity, preprocessing="none",
                                             seed=seed, params=params, backend=backend)
                corrupted[corruption, severity] = np.concatenate(
                    [x.astype(np.uint8) for x, _ in batches.as_numpy_iterator()])
        return cls(images, labels, corrupted, preprocessing)

    def _error(self, classifier, images):
        batches = tf.data.Dataset.from_tensor_slices((images, self.labels)).batch(self.batch_size)
        return error_rate(classifier, preprocessed(batches, self.preprocessing))

    def errors(self, classifier) -> dict:
        """{"clean", "corrupted"} error in %; corrupted is the mean over every corrupted set."""
        corrupted = [self._error(classifier, images) for images in self.corrupted.values()]
        return {"clean": self._error(classifier, self.images), "corrupted": float(np.mean(corrupted))}

    def accuracies(self, classifier) -> dict:
        """{"clean_accuracy", "corrupted_accuracy"} in % (100 − `errors`)."""
        errors = self.errors(classifier)
        return {"clean_accuracy": 100.0 - errors["clean"], "corrupted_accuracy": 100.0 - errors["corrupted"]}
