"""A repair run's folder: the one owner of its layout, its JSON files and the refusal to mix two runs.

    config.json      the full config that makes the run, package versions, the model file's fingerprint
    pretrained.keras the classifier, when the run pre-trained it itself
    before.json      the pretrained model's errors (evaluated once, kept across resumes)
    checkpoints/     one checkpoint after every phase (resume)
    logs/            TensorBoard: scalars per phase, CAM panels
    model.keras      the repaired classifier          } written last: a folder with
    report.json      before/after errors, schedule... } report.json is finished
    last_phase.keras the classifier after the last epoch, whatever phase was kept (optional: written by
                     scripts/last_phase.py, to evaluate what training reached before the guard chose)

Re-running the same command with the same `out` resumes or reuses the run; a
different config in the same folder is refused unless `force`.
"""

import os

from ar2_tf.errors import UserError
from ar2_tf.output_files import claim_folder, read_json, save_model_atomic, write_json_atomic

CONFIG = "config.json"
PRETRAINED = "pretrained.keras"
BEFORE = "before.json"
CHECKPOINTS = "checkpoints"
LOGS = "logs"
MODEL = "model.keras"
REPORT = "report.json"
LAST_PHASE = "last_phase.keras"
# A run's model files by what they hold: the phase its guard kept, or its last epoch.
MODEL_FILES = {"kept": MODEL, "last-phase": LAST_PHASE}
# What `force` discards of a different run (the pre-trained model stays: it depends only on the data and seed).
_OUTPUTS = (CHECKPOINTS, LOGS, REPORT, MODEL, BEFORE, LAST_PHASE)


class RunFolder:
    """The folder of one repair run (`python -m ar2_tf.train --out PATH`)."""

    def __init__(self, path):
        self.path = os.path.abspath(path)

    def file(self, name) -> str:
        return os.path.join(self.path, name)

    @property
    def finished(self) -> bool:
        """A run is finished once its report is written (the model is saved just before)."""
        return os.path.isfile(self.file(REPORT))

    def claim(self, identity: dict, force=False, upgrade=None) -> "RunFolder":
        """Creates or reopens the folder for the run `identity`; refuses a different run unless `force`.
        `upgrade` brings the recorded identity to today's terms first (`ar2_tf.output_files.claim_folder`)."""
        claim_folder(self.path, CONFIG, identity, outputs=_OUTPUTS, force=force, what="run", key="config",
                     upgrade=upgrade)
        return self

    def read_report(self) -> dict:
        """The finished run's report.

        Raises:
            UserError: not a finished run folder, or its report is unreadable.
        """
        if not self.finished:
            raise UserError(f"{self.path!r} has no {REPORT}: it is not a finished run. Finish it first: "
                            "train again with the same arguments and `out`.")
        return read_json(self.file(REPORT), "re-run training with `force` to write it again.")

    def write_report(self, report: dict):
        write_json_atomic(self.file(REPORT), report)

    def read_before(self):
        """The pretrained model's errors measured by an earlier attempt of this run, or None."""
        path = self.file(BEFORE)
        return read_json(path, "delete it to measure again.") if os.path.exists(path) else None

    def write_before(self, before: dict):
        write_json_atomic(self.file(BEFORE), before)

    def save_model(self, model):
        save_model_atomic(model, self.file(MODEL))
