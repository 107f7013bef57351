"""The tuning objective: corrupted-validation accuracy under a clean-accuracy constraint.

Every trial is scored on a validation split carved from the *training* data
(`ar2_tf.evaluation.validation`); the test split is never read. With

    corrupted = accuracy (%) on the validation images at the target corruption,
                averaged over the validation severities (default 1-5)
    drop      = clean accuracy (%) of the pretrained model − clean accuracy (%) of the trial,
                both on the same clean validation images
    D         = `max_clean_drop` (points)

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

from ar2_tf.evaluation.validation import ValidationSet

OBJECTIVE_NAME = "constrained_robust_accuracy"
OBJECTIVE = keras_tuner.Objective(OBJECTIVE_NAME, direction="max")
PENALTY = 100.0  # larger than any accuracy gap, so violators always rank below feasible trials


def constrained_robust_accuracy(corrupted_accuracy, clean_drop, max_clean_drop) -> float:
    """The objective above, for accuracies and drops in percentage points."""
    if clean_drop <= max_clean_drop:
        return float(corrupted_accuracy)
    return float(corrupted_accuracy - PENALTY - (clean_drop - max_clean_drop))


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
