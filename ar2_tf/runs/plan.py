"""One repair run's plan: what its config resolves to, resolved once and read by every later step.

`plan_run(config, out)` checks the config (`ar2_tf.runs.config.check_run`), takes the method's entry from
the registry (`ar2_tf.runs.methods`) and resolves the model source and the run folder. The model's input
preprocessing (read from a model file's saved config), the schedule and the data splits
(`ar2_tf.runs.splits.load_run_data`) are resolved on first use and then kept: a finished run that is reused
loads no data.

TensorFlow-free up to the first use of those (and, in static corruption mode, the shards' check): a command
builds the plan, and so answers a wrong argument, before it starts TensorFlow. `python -m ar2_tf.train`,
`ar2_tf.repair`, the benchmark's runs and the tuner all build one.
"""

import dataclasses
import functools
import os

from ar2_tf.choices import BENCHMARK_CORRUPTIONS, UNIFIED
from ar2_tf.runs.config import TrainConfig, check_run
from ar2_tf.runs.methods import Method


@dataclasses.dataclass(frozen=True)
class RunPlan:
    """A checked run config and what it resolves to.

    Attributes:
        config: the run's config, checked once.
        method: its method's entry in the registry.
        model_file: whether `config.model` is an existing file (else an architecture built by the run).
        out: the run folder's absolute path; None for a run without one (a tuning search's trials).
        given: data handed over as `tf.data.Dataset`s (`ar2_tf.data.given_datasets.GivenDatasets`), read instead
            of the config's data paths; None: the paths are loaded.
    """

    config: TrainConfig
    method: Method
    model_file: bool
    out: str = None
    given: object = None

    @functools.cached_property
    def preprocessing(self) -> str:
        """The model's input preprocessing spec (`ar2_tf.data.preprocessing.default_preprocessing`)."""
        from ar2_tf.data import preprocessing

        return preprocessing.default_preprocessing(self.config.model, self.config.dataset, self.config.preprocessing)

    @property
    def targets(self) -> tuple:
        """What the run is measured on: its corruption, or all 15 benchmark corruptions for the unified model."""
        return BENCHMARK_CORRUPTIONS if self.config.corruption == UNIFIED else (self.config.corruption,)

    @functools.cached_property
    def schedule(self):
        """The T x (refinement, fine-tuning) steps the method trains (`ar2_tf.method.schedule.Schedule`)."""
        return self.method.schedule(self.config.repair)

    @functools.cached_property
    def data(self):
        """The run's splits (`ar2_tf.runs.splits.RunData`), loaded on first use."""
        from ar2_tf.runs.splits import load_run_data

        return load_run_data(self.config, selects_phase=self.method.selects_phase, given=self.given)

    def with_repair(self, repair) -> "RunPlan":
        """The same run with other AR2 settings (a tuning trial's): the model's preprocessing and the data stay
        as resolved; the schedule follows the new settings."""
        plan = dataclasses.replace(self, config=dataclasses.replace(self.config, repair=repair))
        plan.__dict__.update({name: self.__dict__[name] for name in _OF_THE_DATA_AND_MODEL if name in self.__dict__})
        return plan


_OF_THE_DATA_AND_MODEL = ("preprocessing", "data")  # what a plan resolves that AR2's settings do not change


def default_out(config: TrainConfig) -> str:
    """The run folder a run gets when none is named: runs/<dataset>_<method>_<corruption>."""
    return f"runs/{config.dataset}_{config.method}_{config.corruption}"


def plan_run(config: TrainConfig, out=None, *, like: RunPlan = None, given=None) -> RunPlan:
    """The plan of the run `config` writing to `out` (None: no run folder).

    `like`: a plan of the same model, dataset and preprocessing settings (another method or corruption of a
    benchmark), whose preprocessing is taken rather than read from the model file again. `given`: the run's
    data as `tf.data.Dataset`s (`RunPlan.given`).

    Raises:
        UserError: a config field the user can fix, or (static corruption mode) shards that do not match.
    """
    method = check_run(config)
    if config.corruption_mode == "static":  # the shards exist and match (reads TensorFlow)
        from ar2_tf.data import shards

        shards.check_config(config)
    plan = RunPlan(config, method, os.path.exists(config.model), None if out is None else os.path.abspath(out),
                   given)
    if like is not None and all(getattr(like.config, name) == getattr(config, name)
                                for name in ("model", "dataset", "preprocessing")):
        plan.__dict__["preprocessing"] = like.preprocessing  # its cached property: resolved once for both
    return plan
