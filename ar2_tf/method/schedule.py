"""AR2's schedule (paper Algorithm 1): T iterations of N refinement then M fine-tuning steps.

The schedule is driven in one place, `ScheduleCallback`, inside a single
`model.fit` call:

- step_unit "epoch": one Keras epoch is one step; fit runs T·(N+M) epochs and
  the phase is chosen at each epoch's start.
- step_unit "batch": one Keras epoch is one outer iteration of N+M batches
  (`steps_per_epoch = N + M` over a repeating pipeline); the phase is chosen
  at each batch's start.

`Schedule.fit_arguments` gives the matching `epochs`/`steps_per_epoch`.
`PhaseSchedule` is the same callback for a user's own `fit`, built from N and M.
"""

import dataclasses

import keras

from ar2_tf.errors import UserError
from ar2_tf.method.phased_trainer import FINETUNE, REFINE


@dataclasses.dataclass(frozen=True)
class Schedule:
    """T outer iterations, each N refinement steps then M fine-tuning steps."""

    iterations: int  # T
    refine_steps: int  # N (0: fine-tuning only)
    finetune_steps: int  # M
    unit: str = "epoch"  # "epoch" or "batch"

    @property
    def cycle(self) -> int:
        return self.refine_steps + self.finetune_steps

    @property
    def total_steps(self) -> int:
        return self.iterations * self.cycle

    def phase_at(self, position: int) -> str:
        """The phase of step `position` (0-based over all T·(N+M) steps)."""
        return REFINE if position % self.cycle < self.refine_steps else FINETUNE

    def fit_arguments(self, batches_per_epoch: int) -> dict:
        """`epochs` and `steps_per_epoch` for the one `fit` call that runs the whole schedule."""
        if self.unit == "batch":
            return {"epochs": self.iterations, "steps_per_epoch": self.cycle}
        return {"epochs": self.total_steps, "steps_per_epoch": batches_per_epoch}

    def position(self, epoch: int, batch: int = 0) -> int:
        return epoch * self.cycle + batch if self.unit == "batch" else epoch


class ScheduleCallback(keras.callbacks.Callback):
    """Switches the trainer's phase per the schedule and records each phase run.

    `phases_run` lists `(position, phase)` once per schedule step, in order: the
    record tests use to check that exactly T·(N+M) steps ran.

    With the model's `steps_per_execution` s > 1, Keras runs s steps per call and
    calls back only between calls, so every phase boundary must be a multiple of
    s (`check_steps_per_execution`); a schedule whose boundaries are not is
    refused before the first step instead of silently running the wrong phases.
    """

    def __init__(self, schedule: Schedule):
        super().__init__()
        self.schedule = schedule
        self.phases_run = []
        self._epoch = 0
        self._per_call = 1

    def _enter(self, position):
        phase = self.schedule.phase_at(position)
        self.model.set_phase(phase)
        self.phases_run.append((position, phase))

    def on_train_begin(self, logs=None):
        steps = (self.params or {}).get("steps")
        self._per_call = check_steps_per_execution(self.schedule, getattr(self.model, "steps_per_execution", 1),
                                                   steps)

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch
        if self.schedule.unit == "epoch":
            self._enter(epoch)

    def on_train_batch_begin(self, batch, logs=None):
        if self.schedule.unit == "batch":
            self._enter(self.schedule.position(self._epoch, batch))
            for step in range(batch + 1, min(batch + self._per_call, self.schedule.cycle)):
                self.phases_run.append((self.schedule.position(self._epoch, step), self.model.phase))


def check_steps_per_execution(schedule: Schedule, steps_per_execution, steps_per_epoch=None) -> int:
    """`steps_per_execution` as an int if every phase boundary of `schedule` falls between two calls of Keras'
    train function, else a ValueError that names the boundaries and the fix."""
    per_call = int(steps_per_execution or 1)
    if per_call == 1:
        return 1
    if schedule.unit == "batch":
        lengths = {"N": schedule.refine_steps, "M": schedule.finetune_steps}
    else:
        lengths = {"batches per epoch": steps_per_epoch}
    wrong = [f"{name}={length}" for name, length in lengths.items() if length and length % per_call]
    if wrong:
        raise ValueError(f"steps_per_execution={per_call} runs {per_call} steps per call, but the schedule switches "
                         f"phase after {', '.join(wrong)} steps; Keras can only switch between calls. Compile with "
                         f"steps_per_execution=1 or a divisor of {', '.join(wrong)}.")
    return per_call


class PhaseSchedule(ScheduleCallback):
    """AR2's phase switch as a Keras callback for `RepairModel.fit`: N refinement steps, then M fine-tuning steps,
    over and over (paper Algorithm 1), like `keras.callbacks.LearningRateScheduler` changes the learning rate.

    Args:
        refine_steps: N, refinement steps per iteration (0: fine-tuning only).
        finetune_steps: M, fine-tuning steps per iteration.
        unit: "epoch" (a step is one Keras epoch: `fit(..., epochs=T * (N + M))` runs T iterations) or
            "batch" (a step is one batch and an epoch one iteration: `fit(dataset.repeat(), epochs=T,
            steps_per_epoch=N + M)`).

    Without one, `RepairModel.fit` runs only the selected phase (fine-tuning, with a warning).

    Example:
        model.fit(pairs, epochs=6, callbacks=[ar2_tf.callbacks.PhaseSchedule(refine_steps=1, finetune_steps=2)])
    """

    def __init__(self, refine_steps=1, finetune_steps=1, unit="epoch"):
        if unit not in ("epoch", "batch"):
            raise UserError(f"unit must be 'epoch' or 'batch', got {unit!r}.")
        if int(refine_steps) < 0 or int(finetune_steps) < 0 or int(refine_steps) + int(finetune_steps) < 1:
            raise UserError(f"a schedule needs refine_steps >= 0 and finetune_steps >= 0 with at least one step, got "
                            f"{refine_steps} and {finetune_steps}.")
        # T is what fit's epochs make it: the phase of a step depends on N, M and the unit alone.
        super().__init__(Schedule(iterations=1, refine_steps=int(refine_steps), finetune_steps=int(finetune_steps),
                                  unit=unit))

    def on_train_begin(self, logs=None):
        steps = (self.params or {}).get("steps")
        if self.schedule.unit == "batch" and steps != self.schedule.cycle:
            raise UserError(f"PhaseSchedule(unit='batch') makes one epoch one iteration of {self.schedule.cycle} "
                            f"batches, but fit runs {steps} steps per epoch; pass steps_per_epoch="
                            f"{self.schedule.cycle} over a repeating dataset (dataset.repeat()), or use unit='epoch'.")
        super().on_train_begin(logs)
