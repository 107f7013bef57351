"""AR2 as a Keras Tuner `HyperModel`: the search space, one trial's repair model and its schedule.

Search space (names are `RepairConfig` fields, so a trial's values are a config):

| name | values | paper (CIFAR) |
| --- | --- | --- |
| k | int 1..min(5, classes) | 3 |
| alpha | float 0.1..3, log-uniform | 1.0 |
| refine_steps (N) | int 0..2 (0: fine-tuning alone) | 1 |
| finetune_steps (M) | int 1..2 | 1 |
| refine_learning_rate | float 1e-3..3e-2, log-uniform | 0.01 |
| finetune_learning_rate | float 1e-3..3e-2, log-uniform | 0.01 |

Any `RepairConfig` field can be fixed instead (`python -m tuning --fix k=3`), except the number
of iterations T, which follows from the training budget: every trial trains
for at most `budget` steps (epochs with step_unit "epoch"), as
T = max(1, budget // (N + M)) whole iterations, so trials with larger N and M
get no more training than the others.
"""

import dataclasses

import keras
import keras_tuner
import numpy as np
import tensorflow as tf

from ar2_tf.errors import UserError
from ar2_tf.method.schedule import ScheduleCallback
from ar2_tf.models import loading
from ar2_tf.runs.config import RepairConfig

# RepairConfig field -> how Keras Tuner samples it, given the number of classes.
_DEFAULTS = RepairConfig()
SEARCH_SPACE = {  # defaults: the paper's CIFAR k, α, N, M and the project's learning rates (RepairConfig's)
    "k": lambda hp, classes: hp.Int("k", 1, min(5, classes), default=min(3, classes)),
    "alpha": lambda hp, classes: hp.Float("alpha", 0.1, 3.0, sampling="log", default=1.0),
    "refine_steps": lambda hp, classes: hp.Int("refine_steps", 0, 2, default=1),
    "finetune_steps": lambda hp, classes: hp.Int("finetune_steps", 1, 2, default=1),
    "refine_learning_rate": lambda hp, classes: hp.Float("refine_learning_rate", 1e-3, 3e-2, sampling="log",
                                                         default=_DEFAULTS.refine_learning_rate),
    "finetune_learning_rate": lambda hp, classes: hp.Float("finetune_learning_rate", 1e-3, 3e-2, sampling="log",
                                                           default=_DEFAULTS.finetune_learning_rate),
}
# Short spellings accepted in `SearchConfig.fixed` (python -m tuning --fix).
ALIASES = {"N": "refine_steps", "M": "finetune_steps", "refine_lr": "refine_learning_rate",
           "finetune_lr": "finetune_learning_rate"}
# The paper's CIFAR setting, compared against the search's best under the same budget.
PAPER_DEFAULTS = {"k": 3, "alpha": 1.0, "refine_steps": 1, "finetune_steps": 1}


def parse_fixes(items, num_classes) -> dict:
    """["k=3", "alpha=1.0", ...] -> {field: typed value}; unknown or invalid names are UserErrors."""
    defaults = RepairConfig()
    fixed = {}
    for item in items or ():
        name, separator, text = item.partition("=")
        name = ALIASES.get(name.strip(), name.strip())
        if not separator or not hasattr(defaults, name) or name == "iterations":
            choices = ", ".join(sorted({f.name for f in dataclasses.fields(RepairConfig)} - {"iterations"}))
            raise UserError(f"`fixed` takes NAME=VALUE with NAME one of {choices} (or N, M, refine_lr, "
                            f"finetune_lr); got {item!r}. T follows from `epochs_budget`.")
        kind = type(getattr(defaults, name))
        try:
            fixed[name] = kind(text.strip())
        except ValueError:
            raise UserError(f"`fixed` {name} needs a {kind.__name__}, got {text.strip()!r}.") from None
    if fixed.get("k", 1) > num_classes:
        raise UserError(f"`fixed` k={fixed['k']} exceeds the {num_classes} classes of the dataset; pass `fixed` "
                        f"k={num_classes} (Eq. 2's class set is then every class), or leave k to the search.")
    RepairConfig(**fixed).validate()
    return fixed


def iterations_for(budget, cycle) -> int:
    """T: the whole iterations of N + M steps that fit in `budget` steps (at least one)."""
    return max(1, budget // cycle)


class _StopOnNonFinite(keras.callbacks.Callback):
    """Ends a trial's training at the first NaN/Inf metric (the trial is then scored as diverged)."""

    diverged = False

    def on_train_batch_end(self, batch, logs=None):
        if not np.all(np.isfinite([float(v) for v in (logs or {}).values()])):
            self.diverged = self.model.stop_training = True


class AR2HyperModel(keras_tuner.HyperModel):
    """Builds one trial's compiled `RepairModel` and runs its AR2 schedule.

    Args:
        plan: the search's run plan (`ar2_tf.runs.plan.RunPlan`: the data, model, corruption and batch settings,
            the method and the classifier's input preprocessing); its config's `repair` gives the values of
            fields that are neither searched nor fixed.
        model_path: the pretrained classifier file; every trial repairs a fresh copy of it.
        train: unbatched `(uint8 image, label)` training pairs (validation images excluded).
        train_size: the number of pairs in `train`.
        objective: a `tuning.objective.ConstrainedObjective` that scores the repaired classifier.
        budget: training steps per trial (Hyperband passes its own budget as `epochs`).
        num_classes: bounds k.
        fixed: {field: value} taken out of the search.

    Example:
        tuner = keras_tuner.RandomSearch(AR2HyperModel(...), objective=OBJECTIVE, max_trials=10,
                                         directory="tune", project_name="trials")
        tuner.search(callbacks=[keras.callbacks.TensorBoard("tune/logs")])
    """

    def __init__(self, *, plan, model_path, train, train_size, objective, budget, num_classes, fixed=None,
                 unsafe_model_loading=False):
        super().__init__(name="ar2")
        self.plan, self.model_path, self.train, self.train_size = plan, model_path, train, train_size
        self.objective, self.budget, self.num_classes = objective, budget, num_classes
        self.fixed, self.unsafe = dict(fixed or {}), unsafe_model_loading

    def declare(self, hp) -> dict:
        """Registers the search space on `hp` (fixed fields as `hp.Fixed`); returns this trial's values."""
        values = {}
        for name, sample in SEARCH_SPACE.items():
            values[name] = hp.Fixed(name, self.fixed[name]) if name in self.fixed else sample(hp, self.num_classes)
        for name, value in self.fixed.items():
            if name not in values:
                values[name] = hp.Fixed(name, value)
        return values

    def trial_plan(self, hp, budget=None):
        """The search's plan with a trial's AR2 settings (T from the budget)."""
        repair = dataclasses.replace(self.plan.config.repair, **self.declare(hp))
        iterations = iterations_for(budget or self.budget, repair.refine_steps + repair.finetune_steps)
        return self.plan.with_repair(dataclasses.replace(repair, iterations=iterations))

    def trial_config(self, hp, budget=None):
        """The `TrainConfig` a trial trains with (T from the budget)."""
        return self.trial_plan(hp, budget).config

    def build(self, hp):
        config = self.trial_config(hp)
        classifier = loading.load_model_file(self.model_path, unsafe_model_loading=self.unsafe)
        trainer = self.plan.method.build_trainer(classifier, config)
        # Keras Tuner saves the weights after every epoch; a subclassed model must be built for that.
        trainer.build(classifier.inputs[0].shape)
        return trainer

    def fit(self, hp, model, *args, callbacks=(), epochs=None, initial_epoch=0, verbose=1, **kwargs):
        """Runs the AR2 schedule on `model` and returns the trial's metrics (objective included).

        `callbacks` (Keras Tuner's, TensorBoard) are forwarded to `model.fit`. `epochs` and
        `initial_epoch` are Hyperband's budget in steps: the trial continues its parent's
        whole iterations up to T = budget // (N + M).
        """
        if args or kwargs:
            raise TypeError(f"AR2HyperModel.fit takes callbacks/epochs/initial_epoch/verbose only; got "
                            f"{len(args)} positional and {sorted(kwargs)} keyword arguments.")
        plan = self.trial_plan(hp, epochs)
        config, schedule = plan.config, plan.schedule
        repair = config.repair
        cycle = repair.refine_steps + repair.finetune_steps
        done = iterations_for(initial_epoch, cycle) if initial_epoch else 0
        batches_per_epoch = self.train_size // config.batch_size  # at least 1: checked by run_search
        end = schedule.fit_arguments(batches_per_epoch)
        start = dataclasses.replace(schedule, iterations=done).fit_arguments(batches_per_epoch)["epochs"]
        guard = _StopOnNonFinite()
        if end["epochs"] > start:
            pipeline = plan.method.pipeline(self.train, config, plan.preprocessing, schedule)
            model.fit(pipeline, initial_epoch=start, callbacks=[ScheduleCallback(schedule), guard, *callbacks],
                      verbose=verbose, shuffle=False, **end)
        weights_finite = all(np.all(np.isfinite(w)) for w in model.classifier.get_weights())
        metrics = self.objective(model.classifier, diverged=guard.diverged or not weights_finite)
        metrics.update(iterations=float(repair.iterations), steps_trained=float(repair.iterations * cycle))
        _log_scalars(callbacks, metrics, step=repair.iterations * cycle)
        return metrics


def _log_scalars(callbacks, metrics, step):
    """Writes the trial's metrics into its TensorBoard run (the folder Keras Tuner gave the
    TensorBoard callback), where the hparams dashboard finds them."""
    for callback in callbacks:
        if type(callback).__name__ == "TensorBoard":
            writer = tf.summary.create_file_writer(str(callback.log_dir))
            with writer.as_default():
                for name, value in metrics.items():
                    tf.summary.scalar(name, value, step=step)
            writer.close()
