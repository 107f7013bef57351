"""A model to evaluate: its file, its label and what its run says about it.

Evaluation takes models as `ModelSpec`s and knows model files only: a run folder of
`python -m ar2_tf.train` is read by the runs layer above (`ar2_tf.runs.evaluated_runs.model_spec`), which
knows the run-folder layout and hands evaluation the spec of the run's model. So evaluation never imports
`ar2_tf.runs`, and a repair run can use evaluation.
"""

import dataclasses
import os

from ar2_tf.errors import UserError


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """A model to evaluate and what its run folder says about it.

    Attributes:
        path: the model file.
        label: its name in tables and file names (unique within an evaluation).
        preprocessing: from the run's report.json, else None.
        config: the run's config (dataset, corruption, method, ...), else {}.
        adaptation: None, or "tent": adapted on each test set at test time (`ar2_tf.baselines.tent`).
        folder: the run folder the model comes from, else None.
    """

    path: str
    label: str
    preprocessing: str = None
    config: dict = dataclasses.field(default_factory=dict)
    adaptation: str = None
    folder: str = None

    @classmethod
    def of_file(cls, path) -> "ModelSpec":
        """A model file, labelled by its name."""
        if os.path.isdir(path):
            raise UserError(f"{path!r} is a folder, not a model file; a run folder of python -m ar2_tf.train is "
                            "evaluated through ar2_tf.runs.evaluated_runs.model_spec(path).")
        if not os.path.exists(path):
            raise UserError(f"model {path!r} does not exist; pass a .keras/.h5 file or a run folder.")
        return cls(path, os.path.splitext(os.path.basename(path))[0])

    @property
    def fingerprint(self) -> dict:
        stat = os.stat(self.path)
        return {"path": os.path.abspath(self.path), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def under_tent(spec) -> ModelSpec:
    """`spec` evaluated with TENT test-time adaptation."""
    return dataclasses.replace(spec, label=f"{spec.label} + TENT", adaptation="tent")


def as_baseline(spec) -> ModelSpec:
    """`spec` as the model CE is normalised by."""
    return dataclasses.replace(spec, label=f"{spec.label} (baseline)")


def unique_labels(specs) -> list:
    """`specs` with distinct labels. Model files of one name in different folders take their folder's name
    ("ar2_fog/last_phase", "ar2_fog_seed1/last_phase"); a label still repeated is numbered: "m", "m#2", ..."""
    def parent(spec):
        return os.path.dirname(os.path.abspath(spec.path))

    folders = {}
    for spec in specs:
        if spec.folder is None:
            folders.setdefault(spec.label, set()).add(parent(spec))
    seen, unique = {}, []
    for spec in specs:
        label = spec.label
        if spec.folder is None and len(folders[label]) > 1:
            label = f"{os.path.basename(parent(spec))}/{label}"
        count = seen.get(label, 0)
        seen[label] = count + 1
        unique.append(dataclasses.replace(spec, label=label if not count else f"{label}#{count + 1}"))
    return unique
