"""Validation images: what repair runs select their kept phase on and tuning scores its trials with.

The images reported on are never read for a decision: a repair run keeps the phase with the best corrupted
validation error under a clean-error constraint (`ar2_tf.runs.selection`), on held-out images where the data
has them (`ar2_tf.data.holdout`), and a tuning search scores its trials on a split carved from the training
images (`tuning.objective`).
"""

import dataclasses

import numpy as np
import tensorflow as tf

from ar2_tf.data.holdout import masked
from ar2_tf.data.pipelines import corrupted_pipeline
from ar2_tf.data.stateless_seeds import EVAL_BATCH_SIZE
from ar2_tf.errors import UserError
from ar2_tf.evaluation.error_rates import clean_verdicts, error_rate, preprocessed


def split_validation(split, size, val_size, seed):
    """Splits `size` unbatched examples into (train, validation) by a seeded random choice of
    `val_size` validation indices; the two are disjoint and the same for a given seed."""
    if not 0 < val_size < size:
        raise UserError(f"`val_size` must be between 1 and {size - 1} (the training images available), "
                        f"got {val_size}.")
    is_validation = np.zeros(size, bool)
    is_validation[np.random.default_rng(seed).choice(size, val_size, replace=False)] = True
    return masked(split, ~is_validation), masked(split, is_validation)


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

    def _batches(self, images):
        batches = tf.data.Dataset.from_tensor_slices((images, self.labels)).batch(self.batch_size)
        return preprocessed(batches, self.preprocessing)

    def clean_correct(self, classifier) -> np.ndarray:
        """bool [n]: which clean validation images `classifier` classifies correctly."""
        return clean_verdicts(classifier, tf.data.Dataset.from_tensor_slices((self.images, self.labels)),
                              self.preprocessing)

    def errors(self, classifier, with_verdicts=False) -> dict:
        """{"clean", "corrupted"} error in %; corrupted is the mean over every corrupted set. `with_verdicts`
        adds "clean_correct", the per-image verdicts the clean error is counted from."""
        correct = self.clean_correct(classifier)
        corrupted = [error_rate(classifier, self._batches(images)) for images in self.corrupted.values()]
        errors = {"clean": 100.0 * (1.0 - float(np.mean(correct))), "corrupted": float(np.mean(corrupted))}
        return {**errors, "clean_correct": correct} if with_verdicts else errors

    def accuracies(self, classifier) -> dict:
        """{"clean_accuracy", "corrupted_accuracy"} in % (100 − `errors`)."""
        errors = self.errors(classifier)
        return {"clean_accuracy": 100.0 - errors["clean"], "corrupted_accuracy": 100.0 - errors["corrupted"]}
