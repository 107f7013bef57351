"""Which weights a repair run keeps: the best phase on validation data, under a clean-error constraint.

Keras' `restore_best_weights` made to fit two phases. After every phase (every
Keras epoch: a phase with step_unit "epoch", an outer iteration with "batch")
the classifier's clean and corrupted error on the validation images
(`ar2_tf.evaluation.validation`; held-out images where the data has them,
`ar2_tf.data.holdout`) are recorded, with its clean-error rise over the
pretrained model paired image by image and its standard error
(`ar2_tf.evaluation.clean_rise`). The run keeps

    the phase with the lowest corrupted validation error among those whose
    estimated clean-error rise is at most `max_clean_drop` points,

or, when no phase qualifies, the pretrained weights, with a warning. The rule
takes the estimate, not its upper bound: on a few hundred validation images the
bound is 1.5-2 points above it, and a rule on the bound would refuse nearly
every repair. The report gives the estimate with its standard error and
bound, so a reader sees how sure the guard was. The test split is never read
for this choice.

The state lives in the run's `checkpoints/` folder, written after each phase's
checkpoint, so a run killed at any point resumes with its selection intact:
`selection.json` (the pretrained model's validation errors, every phase's, the
kept phase) and `kept.weights.h5` (the kept weights, the pretrained ones to
begin with).
"""

import os

import keras
import tensorflow as tf

from ar2_tf.errors import UserError
from ar2_tf.evaluation import clean_rise as paired
from ar2_tf.output_files import read_json, write_json_atomic

STATE = "selection.json"
KEPT_WEIGHTS = "kept.weights.h5"
PRETRAINED = "pretrained"  # the `kept` value when no phase qualified


def qualifies(phase: dict, max_clean_drop: float) -> bool:
    """Whether a phase's estimated clean-error rise (`clean_rise`, paired over the validation images) is at most
    `max_clean_drop` points."""
    return phase["clean_rise"]["rise"] <= max_clean_drop


def select_phase(phases, max_clean_drop: float):
    """The index in `phases` of the kept phase, or None (keep the pretrained weights).

    Args:
        phases: per phase, {"corrupted": error %, "clean_rise": `ar2_tf.evaluation.clean_rise.paired_rise`} on
            the validation images, in order.
        max_clean_drop: the clean-error rise (points) a kept phase may cost.

    The lowest corrupted error among qualifying phases; the earlier phase on a tie.
    """
    best = None
    for index, phase in enumerate(phases):
        if qualifies(phase, max_clean_drop) and (
                best is None or phase["corrupted"] < phases[best]["corrupted"]):
            best = index
    return best


class PhaseSelection(keras.callbacks.Callback):
    """Records every phase's validation errors and keeps the best qualifying weights (see the module).

    Args:
        validation: an `ar2_tf.evaluation.validation.ValidationSet`.
        classifier: the model being trained (its weights are saved and, at the end, restored).
        directory: the run's checkpoints folder.
        max_clean_drop: points of clean validation error a kept phase may lose.
        logdir: TensorBoard folder for the validation curves (None: no logging).
    """

    def __init__(self, validation, classifier, directory, max_clean_drop, initial_epoch=0, logdir=None):
        super().__init__()
        self.validation, self.classifier, self.max_clean_drop = validation, classifier, float(max_clean_drop)
        self.initial_epoch = int(initial_epoch)
        self.state_path = os.path.join(directory, STATE)
        self.weights_path = os.path.join(directory, KEPT_WEIGHTS)
        self.writer = tf.summary.create_file_writer(logdir) if logdir else None
        self.state = None

    def on_train_begin(self, logs=None):
        """Measures the pretrained model (fresh run) or reloads the state (a run resumed after
        `initial_epoch` completed epochs)."""
        completed_epochs = self.initial_epoch
        os.makedirs(os.path.dirname(self.state_path), exist_ok=True)
        if completed_epochs == 0 or not os.path.exists(self.state_path):
            baseline = self.validation.errors(self.classifier, with_verdicts=True)
            baseline["clean_correct"] = paired.encode(baseline["clean_correct"])  # what each phase is paired with
            self.state = {"max_clean_drop": self.max_clean_drop, "baseline": baseline, "phases": [],
                          "kept": PRETRAINED}
            self._save_weights()
            self._log(0, self.state["baseline"])
        else:
            self.state = read_json(self.state_path, "delete the run's checkpoints/ folder, or re-run with `force`.")
            if "clean_correct" not in self.state["baseline"]:  # no per-image verdicts to pair the phases with
                raise UserError(f"{self.state_path} was written by an older version of ar2-tf, which did not record "
                                "the pretrained model's per-image verdicts; re-run with `force` to start over.")
            # Phases after the restored checkpoint are trained again; the last completed one may be unrecorded
            # (killed between its checkpoint and this record): its weights are the restored ones.
            self.state["phases"] = [p for p in self.state["phases"] if p["epoch"] < completed_epochs]
            if not self.state["phases"] or self.state["phases"][-1]["epoch"] < completed_epochs - 1:
                self._record(completed_epochs - 1)
        write_json_atomic(self.state_path, self.state)

    def on_epoch_end(self, epoch, logs=None):
        if self.model.stop_training:
            return  # diverged (NonFiniteGuard): the run stops with an error and keeps its last good checkpoint
        self._record(epoch)
        write_json_atomic(self.state_path, self.state)

    def _record(self, epoch):
        errors = self.validation.errors(self.classifier, with_verdicts=True)
        rise = paired.paired_rise(paired.decode(self.state["baseline"]["clean_correct"]), errors.pop("clean_correct"))
        phase = {"epoch": int(epoch), "phase": getattr(self.model, "phase", None), **errors, "clean_rise": rise}
        phase["qualifies"] = qualifies(phase, self.max_clean_drop)
        self.state["phases"].append(phase)
        kept = select_phase(self.state["phases"], self.max_clean_drop)
        if kept == len(self.state["phases"]) - 1:
            self._save_weights()
            self.state["kept"] = int(epoch)
        self._log(epoch + 1, phase)

    def _save_weights(self):
        temporary = self.weights_path.replace(KEPT_WEIGHTS, "kept.tmp.weights.h5")
        self.classifier.save_weights(temporary)
        os.replace(temporary, self.weights_path)

    def _log(self, step, errors):
        if self.writer is not None:
            with self.writer.as_default():
                tf.summary.scalar("validation/clean_error", errors["clean"], step=step)
                tf.summary.scalar("validation/corrupted_error", errors["corrupted"], step=step)
            self.writer.flush()

    def restore_kept(self, model) -> dict:
        """Loads the kept weights into `model` (same architecture); returns the report's `validation` entry."""
        model.load_weights(self.weights_path)
        summary = dict(self.state, baseline={key: value for key, value in self.state["baseline"].items()
                                             if key != "clean_correct"})
        if summary["kept"] == PRETRAINED:
            summary["warning"] = (
                f"no phase kept the clean validation error within {self.max_clean_drop:g} points of the pretrained "
                f"model's ({summary['baseline']['clean']:.2f}%): the pretrained weights are kept. Lower the "
                "learning rates (`refine_learning_rate`, `finetune_learning_rate`) or allow more with `max_clean_drop`.")
        return summary


def clean_rise(report: dict) -> float:
    """Points of clean *test* error the repaired model added to the pretrained model's (negative: it improved)."""
    return report["after"]["clean"] - report["before"]["clean"]


def breaks_clean_constraint(report: dict) -> bool:
    """Whether a finished run's clean test error rose by more than its `max_clean_drop` (1.0 for older runs):
    what the printed summary marks and what `python -m export` refuses without its `allow_clean_drop`. A report
    without before/after clean errors has nothing to check."""
    if "clean" not in report.get("before", {}) or "clean" not in report.get("after", {}):
        return False
    return clean_rise(report) > report["config"].get("max_clean_drop", 1.0)


def kept_description(report: dict) -> str:
    """One line on which weights the run kept, for people."""
    validation = report.get("validation")
    if not validation:
        return "kept: the last phase (no validation split)"
    if validation["kept"] == PRETRAINED:
        return f"kept: the pretrained weights. warning: {validation['warning']}"
    phase = next(p for p in validation["phases"] if p["epoch"] == validation["kept"])
    baseline = validation["baseline"]
    line = (f"kept: epoch {phase['epoch'] + 1} of {len(validation['phases'])} ({phase['phase']}); validation error "
            f"clean {phase['clean']:.2f} (pretrained {baseline['clean']:.2f}), corrupted {phase['corrupted']:.2f} "
            f"(pretrained {baseline['corrupted']:.2f})")
    rise = phase.get("clean_rise")
    if rise:  # runs of older versions recorded no paired estimate
        line += (f"\nclean-error rise on {rise['images']} validation images: {rise['rise']:+.2f} points, standard "
                 f"error {rise['se']:.2f}, 95 % upper bound {rise['bound']:+.2f} (a phase is kept when the "
                 f"estimate is at most {validation['max_clean_drop']:g})")
    return line
