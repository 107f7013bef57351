"""AR2's schedule (paper Algorithm 1): T iterations of N refinement then M fine-tuning steps.

The schedule is driven in one place, `ScheduleCallback`, inside a single
`model.fit` call:

- step_unit "epoch": one Keras epoch is one step; fit runs T·(N+M) epochs and
  the phase is chosen at each epoch's start.
- step_unit "batch": one Keras epoch is one outer iteration of N+M batches
  (`steps_per_epoch = N + M` over a repeating pipeline); the phase is chosen
  at each batch's start.

`Schedule.fit_arguments` gives the matching `epochs`/`steps_per_epoch`.
"""

import dataclasses

import keras

from ar2_tf.method.repair_model import FINETUNE, REFINE


@dataclasses.dataclass(frozen=True)
class Schedule:
    """T outer iterations, each N refinement steps then M fine-tuning steps."""

    iterations: int  # T
    refine_steps: int  # N (0: fine-tuning only)
    finetune_steps: int  # M
    unit: str = "epoch"  # "epoch" or "batch"

    @classmethod
    def from_config(cls, repair):
        return cls(repair.iterations, repair.refine_steps, repair.finetune_steps, repair.step_unit)

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
    """Switches the `RepairModel` phase per the schedule and records each phase run.

    `phases_run` lists `(position, phase)` once per schedule step, in order: the
    record tests use to check that exactly T·(N+M) steps ran.
    """

    def __init__(self, schedule: Schedule):
        super().__init__()
        self.schedule = schedule
        self.phases_run = []
        self._epoch = 0

    def _enter(self, position):
        phase = self.schedule.phase_at(position)
        self.model.set_phase(phase)
        self.phases_run.append((position, phase))

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch
        if self.schedule.unit == "epoch":
            self._enter(epoch)

    def on_train_batch_begin(self, batch, logs=None):
        if self.schedule.unit == "batch":
            self._enter(self.schedule.position(self._epoch, batch))
