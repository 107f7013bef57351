"""What an evaluation is told of a finished repair run: the `ModelSpec` of its model.

The run-folder layout belongs to the runs layer (`ar2_tf.runs.run_folder`), so reading a run folder for
evaluation happens here, above evaluation: the commands (and the benchmark) turn each path they are given
into a `ModelSpec` with `model_spec`, and `ar2_tf.evaluation.suite.run_evaluation` measures specs.
"""

import os

from ar2_tf.errors import UserError
from ar2_tf.evaluation.model_spec import ModelSpec
from ar2_tf.runs.run_folder import MODEL, RunFolder


def model_spec(path) -> ModelSpec:
    """A model file, or a finished run folder (its model.keras and what its report.json says)."""
    run = RunFolder(path)
    if os.path.isdir(path) and run.finished:
        report = run.read_report()
        model_path = run.file(MODEL)
        if not os.path.exists(model_path):
            raise UserError(f"run folder {path!r} has a report.json but no model.keras; was the run finished?")
        config = report.get("config", {})
        label = f"{config.get('method', 'run')}:{config.get('corruption', os.path.basename(os.path.normpath(path)))}"
        return ModelSpec(model_path, label, report.get("preprocessing"), config, folder=path)
    if os.path.isdir(path):
        raise UserError(f"{path!r} is a folder without report.json; pass a .keras/.h5 file or a finished run "
                        "folder of python -m ar2_tf.train.")
    return ModelSpec.of_file(path)
