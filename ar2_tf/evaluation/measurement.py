"""What an evaluation measures per model (`ar2_tf.evaluation.suite`).

A `Measurement` holds the errors of one model file under one preprocessing and adaptation; every model that
names it reads it (`ModelResult`), and a model with the same architecture and weights as another
(`ar2_tf.models.digest`) takes that one's results instead of being measured again.
"""

import dataclasses

from ar2_tf.evaluation.model_spec import ModelSpec
from ar2_tf.evaluation.multi_model import ErrorCounter


@dataclasses.dataclass(eq=False)
class Measurement:
    """The errors of one model file under one preprocessing and adaptation, measured once for every model that
    names it (a baseline also passed as a model is evaluated once)."""

    source: str  # the model file
    preprocessing: str  # the preprocessing it is evaluated under
    adaptation: str = None  # None, or "tent" (`ar2_tf.baselines.tent`)
    title: str = ""  # the label of the first model that names it, for progress lines
    check: bool = None  # None: not checked (a run's own preprocessing); else checked first, True when passed
    clean: float = None  # clean error (%); None until measured
    errors: dict = dataclasses.field(default_factory=dict)  # {corruption: {severity (str): error (%)}}
    failed: dict = dataclasses.field(default_factory=dict)  # {corruption: why its evaluation failed}
    same_as: str = None  # the title of the identical model (`ar2_tf.models.digest`) measured in its place

    def copy_from(self, measured: "Measurement"):
        """Takes the results of `measured`, the identical model measured in its place."""
        self.same_as, self.clean, self.failed = measured.title, measured.clean, dict(measured.failed)
        for corruption, cells in measured.errors.items():
            self.errors.setdefault(corruption, {}).update(cells)

    def counter(self, classifier):
        """The error counter: the model as it is, or adapted by TENT on each test set."""
        if self.adaptation == "tent":
            from ar2_tf.baselines.tent import TentCounter

            return TentCounter(classifier, self.preprocessing)
        return ErrorCounter(classifier, self.preprocessing, fold=True)


@dataclasses.dataclass(eq=False)
class ModelResult:
    """One model of an evaluation: its spec and the measurement it reads (shared by models naming one file)."""

    spec: ModelSpec
    measurement: Measurement
    fingerprint: dict  # the model file's path, size and modification time when the evaluation started
    summary: dict = None  # every normalisation of CE / mCE (`ar2_tf.evaluation.metrics.summarize`)

    def record(self) -> dict:
        """The model's entry in evaluation.json."""
        measured = self.measurement
        entry = {"source": self.spec.path, "fingerprint": self.fingerprint, "config": self.spec.config,
                 "adaptation": self.spec.adaptation, "preprocessing": measured.preprocessing,
                 "errors": measured.errors, "failed": measured.failed}
        if measured.clean is not None:
            entry["clean"] = measured.clean
        if measured.same_as is not None:
            entry["same_weights_as"] = measured.same_as
        if self.summary is not None:
            entry["summary"] = self.summary
        return entry
