"""Keras callbacks for `ar2_tf.RepairModel.fit`: the phase schedule, best-phase selection and CAM panels.

- `PhaseSchedule`: N refinement then M fine-tuning steps, over and over (`ar2_tf.method.schedule`);
- `KeepBestPhase`: Keras' `restore_best_weights` for two phases, under a clean-error constraint, by the rule
  of repair runs (`ar2_tf.runs.selection.select_phase`);
- `CAMImages`: TensorBoard panels of the pretrained and the repaired model's attention
  (`ar2_tf.method.callbacks`).

Example:
    model.fit(pairs, epochs=6, callbacks=[
        PhaseSchedule(refine_steps=1, finetune_steps=1),
        KeepBestPhase(val, corruption="fog", severity=3, preprocessing="tf", max_clean_drop=1.0),
        CAMImages.from_dataset("logs", val, corruption="fog", severity=3, preprocessing="tf")])
"""

import warnings

import keras

from ar2_tf.choices import BENCHMARK_CORRUPTIONS, UNIFIED
from ar2_tf.data.pairs import check_corruption_choice, pixel_split
from ar2_tf.evaluation import clean_rise as paired
from ar2_tf.evaluation.validation import ValidationSet
from ar2_tf.method.callbacks import CAMImages
from ar2_tf.method.schedule import PhaseSchedule
from ar2_tf.runs.selection import PRETRAINED, qualifies, select_phase

__all__ = ["CAMImages", "KeepBestPhase", "PhaseSchedule"]


class KeepBestPhase(keras.callbacks.Callback):
    """Keeps the weights of the phase with the lowest corrupted validation error among those that cost at most
    `max_clean_drop` points of clean validation error, and restores them when training ends.

    After every epoch (a phase with `PhaseSchedule(unit="epoch")`, an iteration with "batch") the classifier's
    clean error and its error on the corrupted validation images are measured; its clean-error rise over the
    weights it had when training began is estimated image by image (`ar2_tf.evaluation.clean_rise`). The kept
    phase is the one `ar2_tf.runs.selection.select_phase` picks, the rule repair runs keep theirs by; when no
    phase qualifies, the weights training began with are restored, with a warning. Weights are kept in memory.

    The epoch's logs get `val_clean_error` and `val_corrupted_error` (in %), so `History` records them.

    Args:
        validation_data: the validation images: a `tf.data.Dataset` of `(images, labels)` (batched or not;
            uint8 or float 0..255) or a tuple `(x, y)`; never the images you report on.
        corruption: the corruption to validate on (a name of `ar2_tf.corruptions.ALL_CORRUPTIONS`), or "all"
            (the mean error over the 15 benchmark corruptions).
        severity: its severity, 1-5.
        preprocessing: the classifier's input preprocessing (`ar2_tf.data.preprocessing`).
        max_clean_drop: points of clean validation error a kept phase may add.
        seed: base seed of the validation noise (fixed for every phase).
        params: the corruption parameter set of `ar2_tf.corruptions.corrupt` ("cifar" or "imagenet").
        backend: the corruption implementation of `ar2_tf.corruptions.corrupt` ("native" or "reference").

    Attributes:
        baseline: {"clean", "corrupted"} validation errors (%) of the weights training began with.
        phases: per epoch, {"epoch", "phase", "clean", "corrupted", "clean_rise", "qualifies"}.
        kept: the kept epoch (0-based), or "pretrained".

    Example:
        keep = KeepBestPhase(val, corruption="fog", severity=3, preprocessing="tf", max_clean_drop=1.0)
        model.fit(pairs, epochs=6, callbacks=[keep])
        print(keep.kept, keep.phases)
    """

    def __init__(self, validation_data, *, corruption, severity=3, preprocessing, max_clean_drop=1.0, seed=0,
                 params="cifar", backend="native"):
        super().__init__()
        corruption, severity = check_corruption_choice(corruption, severity)
        names = BENCHMARK_CORRUPTIONS if corruption == UNIFIED else (corruption,)  # "all": the mean over the 15
        self.validation = ValidationSet.from_split(
            pixel_split(validation_data, "validation_data"), corruptions=names, severities=(severity,),
            preprocessing=preprocessing, params=params, backend=backend, seed=seed)
        self.max_clean_drop = float(max_clean_drop)
        self.baseline, self.phases, self.kept = None, [], PRETRAINED
        self._baseline_correct = self._kept_weights = None

    @property
    def classifier(self):
        """The model whose weights are measured and kept: a `RepairModel`'s classifier, else the model itself."""
        return getattr(self.model, "classifier", self.model)

    def on_train_begin(self, logs=None):
        errors = self.validation.errors(self.classifier, with_verdicts=True)
        self._baseline_correct = errors.pop("clean_correct")
        self.baseline, self.phases, self.kept = errors, [], PRETRAINED
        self._kept_weights = self.classifier.get_weights()

    def on_epoch_end(self, epoch, logs=None):
        errors = self.validation.errors(self.classifier, with_verdicts=True)
        rise = paired.paired_rise(self._baseline_correct, errors.pop("clean_correct"))
        phase = {"epoch": int(epoch), "phase": getattr(self.model, "phase", None), **errors, "clean_rise": rise}
        phase["qualifies"] = qualifies(phase, self.max_clean_drop)
        self.phases.append(phase)
        if select_phase(self.phases, self.max_clean_drop) == len(self.phases) - 1:
            self.kept, self._kept_weights = int(epoch), self.classifier.get_weights()
        if logs is not None:
            logs.update(val_clean_error=errors["clean"], val_corrupted_error=errors["corrupted"])

    def on_train_end(self, logs=None):
        self.classifier.set_weights(self._kept_weights)
        if self.kept == PRETRAINED:
            warnings.warn(f"no phase kept the clean validation error within {self.max_clean_drop:g} points of the "
                          f"starting weights' ({self.baseline['clean']:.2f}%): those weights are restored. Lower the "
                          "learning rates or allow more with max_clean_drop.", stacklevel=2)
