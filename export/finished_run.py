"""What an export needs from a finished run folder, checked before any work starts.

A run folder written by `python -m ar2_tf.train --out runs/X` holds
`model.keras` (the repaired classifier, fed preprocessed float images) and
`report.json` (its config, preprocessing name, class names and input shape).
`read_run` loads both and checks they agree; `model_name` derives the TF
Serving model name from method, dataset and corruption.
"""

import dataclasses
import os
import re

from ar2_tf.choices import LARGE_IMAGE_DATASETS, UNIFIED
from ar2_tf.data.preprocessing import get_preprocessor
from ar2_tf.errors import UserError
from ar2_tf.models import loading
from ar2_tf.runs import run_folder
from ar2_tf.runs.run_folder import RunFolder
from ar2_tf.safe_paths import safe_name, sanitize_name

# TF Serving puts model names in URLs (/v1/models/NAME:predict) and the base
# path: letters, digits, '.', '_', '-', starting with a letter or digit (so a
# name can never be hidden or look like the temporary folders export writes).
_MODEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_REQUIRED = ("config", "preprocessing", "class_names", "input_shape")


@dataclasses.dataclass(frozen=True)
class Run:
    """A finished repair run, ready to export.

    Attributes:
        path: the run folder.
        model: the repaired Keras classifier (input: preprocessed float images).
        config: the run's training config (a dict, as in report.json).
        preprocessing: name of the uint8 -> model input function (ar2_tf.data.preprocessing).
        class_names: one name per class, in label order.
        input_shape: (H, W, 3) the model was trained at and is served at (its own input size, or the data's for
            a model that takes any size).
        resize: how serving brings images to the input size: "center_crop" or "resize".
        report: the run's whole report.json (before/after errors, validation, kept phase).
    """

    path: str
    model: object
    config: dict
    preprocessing: str
    class_names: tuple
    input_shape: tuple
    resize: str
    report: dict = None


def read_run(path: str, unsafe_model_loading: bool = False) -> Run:
    """Loads and checks run folder `path`.

    Raises:
        UserError: the folder is missing, unfinished, or its model and report disagree.
    """
    run = RunFolder(path)
    report_path, model_path = run.file(run_folder.REPORT), run.file(run_folder.MODEL)
    if not os.path.isdir(path):
        raise UserError(f"`run_paths` {path!r} is not a folder; pass a run folder written by "
                        "python -m ar2_tf.train --out.")
    report = run.read_report()
    if not os.path.isfile(model_path):
        raise UserError(f"run {path!r} has no {run_folder.MODEL}: it is not a finished run. "
                        "Finish it with python -m ar2_tf.train --out (same arguments) first.")
    missing = [key for key in _REQUIRED if key not in report]
    if missing:
        raise UserError(f"{report_path!r} lacks {', '.join(missing)}; re-run training with this version of ar2-tf.")
    get_preprocessor(report["preprocessing"])  # an unknown name is a UserError naming the choices
    model = loading.load_model_file(model_path, unsafe_model_loading=unsafe_model_loading)
    input_shape = tuple(report["input_shape"])
    class_names = tuple(str(name) for name in report["class_names"])
    _check_agreement(path, model, input_shape, class_names)
    config = report["config"]
    resize = "center_crop" if config.get("dataset") in LARGE_IMAGE_DATASETS else "resize"
    if resize == "center_crop" and input_shape[0] != input_shape[1]:
        raise UserError(f"run {path!r}: centre-cropped datasets need a square input, got {input_shape}.")
    return Run(path, model, config, report["preprocessing"], class_names, input_shape, resize, report)


def _check_agreement(path, model, input_shape, class_names):
    model_shape = tuple(model.inputs[0].shape[1:])
    if len(input_shape) != 3 or input_shape[-1] != 3 or len(model_shape) != 3 or any(
            own is not None and own != size for own, size in zip(model_shape, input_shape)):
        raise UserError(f"run {path!r}: report input_shape {list(input_shape)} does not match the model's "
                        f"{list(model_shape)} (an [H, W, 3] image is expected).")
    if None in input_shape:  # the model takes any size, and the run did not record the size it trained at
        raise UserError(f"run {path!r}: the model takes images of any size and report.json does not say which size "
                        "it was trained at (runs before this version, or image folders of mixed sizes); re-run "
                        "python -m ar2_tf.train with --image-size N (and --force) to serve it at N x N.")
    outputs = model.outputs[0].shape[-1]
    if outputs != len(class_names):
        raise UserError(f"run {path!r}: the model has {outputs} outputs but report.json names "
                        f"{len(class_names)} classes.")


def model_name(config: dict) -> str:
    """The TF Serving model name of a run: METHOD_DATASET_CORRUPTION, e.g. ar2_cifar10_gaussian_noise.

    The unified model (corruption "all") is named METHOD_DATASET_unified. Parts
    come from a file that may not be ours, so each is sanitised.
    """
    corruption = config.get("corruption", "unknown")
    corruption = "unified" if corruption == UNIFIED else corruption
    parts = (config.get("method", "ar2"), config.get("dataset", "unknown"), corruption)
    return check_model_name("_".join(sanitize_name(part).strip("._-") or "_" for part in parts))


def check_model_name(name: str) -> str:
    """Returns `name` if it is a safe TF Serving model name, else raises a UserError."""
    safe_name(name, "model name")
    if not _MODEL_NAME.fullmatch(name):
        raise UserError(f"model name {name!r} is not allowed: use 1-128 letters, digits, '.', '_' or '-', "
                        "starting with a letter or digit (it appears in URLs and folder names).")
    return name
