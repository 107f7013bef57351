"""The Python entry point: `ar2_tf.repair(model, (x_train, y_train), ...)` from a notebook or a script.

    import ar2_tf
    result = ar2_tf.repair(model, (x_train, y_train), test=(x_test, y_test), val=(x_val, y_val),
                           corruption="fog", out="runs/fog", iterations=4)
    result.model   # the repaired keras.Model (the kept phase's weights)
    result.report  # before/after errors, as report.json

It runs the very path of `python -m ar2_tf.train`: an in-memory model and arrays are first written into the
run folder (`<out>/inputs/`), named by a hash of their content, and the run then names them like any files.
So the run folder is an ordinary one: calling `repair` again with the same model, data and options resumes
it or reuses its result, a changed model or data set is a different run (refused unless `force=True`), and
`python -m ar2_tf.evaluate --model <out>` and `python -m export --run <out>` work on it as on any run.
Data given as `tf.data.Dataset`s is read by the run in place (`ar2_tf.data.given_datasets`), not written:
such a run is never resumed nor reused (`repair`).

Options are the run's config fields (`ar2_tf.runs.config.TrainConfig` and `RepairConfig`, e.g. `preset`,
`iterations`, `k`, `alpha`, `refine_learning_rate`, `preprocessing`, `batch_size`, `method`), checked as
the command checks its flags; a wrong one raises `ar2_tf.errors.UserError` with the fix, naming the
arguments of `repair` (`train` for the data the config calls `data_dir`), never a file written to `inputs/`.
"""

import dataclasses
import hashlib
import json
import os
import re

import numpy as np

from ar2_tf.errors import UserError, speaking
from ar2_tf.runs.config import RepairConfig, TrainConfig, resolve
from ar2_tf.runs.plan import default_out, plan_run

INPUTS = "inputs"  # inside the run folder: the model and arrays handed over in memory
_WRITTEN = re.compile(r"(model-[0-9a-f]{16}\.keras|data-[0-9a-f]{16}\.npz)")  # their names there
_ARGUMENTS = {"data_dir": "`train`", "val_data_dir": "`val`"}  # config fields that are arguments of `repair`


@dataclasses.dataclass(frozen=True)
class RepairResult:
    """A finished run: its folder, its report, and the repaired model (`model`: loaded from the folder's
    model.keras at each access)."""

    out: str
    report: dict = dataclasses.field(repr=False)
    unsafe_model_loading: bool = dataclasses.field(default=False, repr=False)

    def __repr__(self):  # what a notebook shows: the errors, not the whole report
        before, after, corruption = self.report["before"], self.report["after"], self.report["config"]["corruption"]
        return (f"RepairResult(out={self.out!r}, error % before -> after: clean {before['clean']:.2f} -> "
                f"{after['clean']:.2f}, {corruption} (mean over severities) {before['mean_corrupted']:.2f} -> "
                f"{after['mean_corrupted']:.2f})")

    @property
    def model(self):
        from ar2_tf.models.loading import load_model_file
        from ar2_tf.runs.run_folder import MODEL

        return load_model_file(os.path.join(self.out, MODEL), unsafe=self.unsafe_model_loading)


def repair(model, train, test=None, *, val=None, corruption="gaussian_noise", out=None, force=False, verbose=1,
           strategy="auto", **options) -> RepairResult:
    """Repairs `model` for `corruption` with AR2 (or `method=...`); returns the finished run (None on a
    worker other than the chief of a multi-worker strategy, which writes nothing).

    A `tf.data.Dataset` (`keras.utils.image_dataset_from_directory`'s, a TFDS split) may stand for any of
    `train`, `test` and `val`: it yields `(images, labels)`, batched or not, images uint8 or float 0..255,
    labels integer or one-hot; class names are its `class_names`, else `class_0`, `class_1`, .... Each dataset
    is read once before the run (to count its images, read its labels and check its pixels), then as the run
    needs it, so `test` (and `train` without `test`, or with `train_size`) must give its images in the same
    order at each read (`shuffle=False`). The run is the one the same pixels given as arrays make, but
    nothing records a dataset's content: a dataset-fed run is never resumed nor reused, and a run already in
    `out` is refused unless `force=True`, which discards it and starts over.

    Args:
        model: a Keras classifier, or the path of its `.keras`/`.h5` file.
        train: `(images, labels)` arrays (uint8 [N, H, W, 3] and integer or one-hot labels, as the
            `dataset` "npz" takes them: `ar2_tf.data.user_arrays`), a `tf.data.Dataset` (above), or a data
            path (`data_dir`: an `.npz` file, an image folder, a prepared TFDS dataset) read as
            `python -m ar2_tf.train` reads it.
        test: `(images, labels)` arrays or a dataset to evaluate on; None: with arrays or a dataset, a fixed
            20 % of each class of `train` is held out, as for a flat image folder.
        val: held-out `(images, labels)` arrays, a dataset (or a `val_data_dir` path) that choose the kept phase;
            None: a fixed half of `test` (at most 1,000 images; the rest tests), or, without `test`, a tenth of
            `train`, a lenient guard on images the model may have memorised (`ar2_tf.data.holdout`).
        corruption: the corruption to repair for (`ar2_tf.corruptions.ALL_CORRUPTIONS`), or "all".
        out: the run folder; default `runs/<dataset>_<method>_<corruption>`.
        force: discard a different run found in `out` (with a dataset, any run found there).
        verbose: Keras verbosity (0 silent, 1 bars, 2 lines).
        strategy: a name of `ar2_tf.choices.STRATEGIES` or a `tf.distribute.Strategy`.
        **options: config fields (module docstring); `dataset` names how a `train` path is read (default:
            npz for an `.npz` file, folder for a folder).

    Raises:
        UserError: a wrong option, model or data, with the fix.
    """
    from ar2_tf.runs.repair_run import run_repair

    fields, repair_fields = _split_options(options)
    preset = fields.pop("preset", None)
    dataset = fields.pop("dataset", None)
    from_path = isinstance(train, (str, os.PathLike))
    fed = any(_is_dataset(value) for value in (train, test, val))
    if from_path:
        if test is not None:
            raise UserError("test arrays go with train arrays; with a train path, the data source's own test "
                            "split tests (pass eval_data_dir=PATH for another one).")
        if fed:
            raise UserError("a `val` tf.data.Dataset goes with a `train` dataset or arrays, not a train path; "
                            "pass `val` as a path too, or `train` as a dataset.")
        data_dir = os.fspath(train)
        dataset = dataset or ("npz" if data_dir.endswith(".npz") else "folder")
    else:
        dataset = dataset or "npz"
        if dataset != "npz":
            what = "datasets" if fed else "arrays"
            raise UserError(f"train {what} are read as dataset 'npz', not {dataset!r}; leave dataset out.")
    # A file name stands for an in-memory model until its file is written: a model file is already trained.
    fields.update(corruption=corruption, model=os.fspath(model) if isinstance(model, (str, os.PathLike))
                  else "model.keras")
    config = resolve(dataset, preset, {}, fields, repair_fields)
    out = os.path.abspath(out or default_out(config))
    if fed:
        return _repair_datasets(model, train, test, val, config, out, force=force, strategy=strategy,
                                verbose=verbose)
    inputs, made = os.path.join(out, INPUTS), not os.path.exists(out)
    written = {}  # {a file written to inputs/: the argument it holds, as messages name it}
    try:  # the inputs first, since their content names their files; a refusal from here on removes them
        if not from_path:
            data_dir = _write_arrays(inputs, {"train": train, "test": test})
            written[data_dir] = "the `train` arrays" if test is None else "the `train` and `test` arrays"
        if val is not None:  # a test-split-only file: read as a `val_data_dir` is
            val_dir = os.fspath(val) if isinstance(val, (str, os.PathLike)) else _write_arrays(inputs, {"test": val},
                                                                                                what="val")
            written.setdefault(val_dir, "the `val` arrays")
            config = dataclasses.replace(config, val_data_dir=val_dir)
        model_path = _model_path(inputs, model)
        if not isinstance(model, (str, os.PathLike)):
            written[model_path] = "the `model`"
        plan = plan_run(dataclasses.replace(config, data_dir=data_dir, model=model_path), out)
        with speaking(_ARGUMENTS):
            report = run_repair(plan, force=force, strategy=strategy, verbose=verbose)
    except UserError as error:
        raise UserError(_in_callers_words(error, written)) from error
    finally:
        _tidy_inputs(out, made)
    return None if report is None else RepairResult(out, report, plan.config.unsafe_model_loading)


def _is_dataset(value) -> bool:
    """Whether `value` is a `tf.data.Dataset`, told without importing TensorFlow."""
    return type(value).__module__.startswith("tensorflow") and hasattr(value, "element_spec")


def _repair_datasets(model, train, test, val, config, out, *, force, strategy, verbose) -> RepairResult:
    """`repair` for data given as `tf.data.Dataset`s (array pairs among them are made datasets too): the datasets
    are read once for their sizes and labels, and the run's plan reads them instead of a data path. The run
    folder cannot tell whether a dataset changed, so a run already in `out` is refused unless `force`, which
    discards it."""
    from ar2_tf.data import given_datasets
    from ar2_tf.runs.repair_run import run_repair
    from ar2_tf.runs.run_folder import CONFIG

    if config.corruption_mode == "static":
        raise UserError("corruption_mode 'static' reads shards precomputed from a data path; with tf.data.Dataset "
                        "data, leave corruption_mode out (the corruptions are then drawn on the fly).")
    if os.path.exists(os.path.join(out, CONFIG)):
        if not force:
            raise UserError(f"`out` {out!r} already holds a run, and a run fed a tf.data.Dataset is never resumed "
                            "nor reused (nothing records whether the data changed); pass force=True to discard it "
                            "and run again, or another `out`.")
        _discard_run(out)
    inputs, made = os.path.join(out, INPUTS), not os.path.exists(out)
    written = {given_datasets.TRAIN: "the `train` dataset", given_datasets.VAL: "the `val` dataset"}
    try:
        data = {name: _as_dataset(value, name) for name, value in (("train", train), ("test", test), ("val", val))}
        given = given_datasets.given_datasets(data["train"], data["test"], data["val"], image_size=config.image_size,
                                              train_subset=config.train_size is not None)
        model_path = _model_path(inputs, model)
        if not isinstance(model, (str, os.PathLike)):
            written[model_path] = "the `model`"
        plan = plan_run(dataclasses.replace(config, data_dir=given_datasets.TRAIN, model=model_path), out,
                        given=given)
        if val is not None:  # recorded once the config is checked: the check looks for a `val_data_dir` path
            plan = dataclasses.replace(plan, config=dataclasses.replace(plan.config, val_data_dir=given_datasets.VAL))
        with speaking(_ARGUMENTS):
            report = run_repair(plan, force=force, strategy=strategy, verbose=verbose)
    except UserError as error:
        raise UserError(_in_callers_words(error, written)) from error
    finally:
        _tidy_inputs(out, made)
    return None if report is None else RepairResult(out, report, plan.config.unsafe_model_loading)


def _as_dataset(value, name):
    """`value` (a dataset, an `(images, labels)` pair of arrays, or None) as a dataset of single pairs."""
    if value is None or _is_dataset(value):
        return value
    if isinstance(value, (str, os.PathLike)):
        raise UserError(f"`{name}` is a path, but the other data is a tf.data.Dataset; pass `{name}` as a dataset "
                        "or as arrays too.")
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise UserError(f"{name} must be an (images, labels) pair of arrays, or a tf.data.Dataset.")
    from ar2_tf.data.user_arrays import check_arrays

    check_arrays(*value, f"the `{name}`")
    import tensorflow as tf

    return tf.data.Dataset.from_tensor_slices(tuple(np.asarray(array) for array in value))


def _discard_run(out):
    """Removes the run recorded in `out` (its config and every output), for a dataset-fed run to start over."""
    from ar2_tf.output_files import remove_outputs
    from ar2_tf.runs import run_folder

    remove_outputs(out, [run_folder.CONFIG, run_folder.PRETRAINED, run_folder.BEFORE, run_folder.CHECKPOINTS,
                         run_folder.LOGS, run_folder.MODEL, run_folder.REPORT])


def _in_callers_words(error, written) -> str:
    """`error`'s message as a caller of `repair` reads it: the config fields that are `repair`'s arguments
    named as those, and each file written to `inputs/` as the argument that holds it."""
    message = error.worded(_ARGUMENTS)
    for path, argument in written.items():
        message = message.replace(repr(path), argument).replace(path, argument)
    return message


def _tidy_inputs(out, made):
    """Removes the files of `<out>/inputs/` that the run folder's config does not name: those of a call
    refused before its run started (a wrong option, or a different run in `out`), or of the run that
    `force=True` replaced; then `inputs/` if that leaves it empty, and `out` too if this call `made` it."""
    from ar2_tf.runs.run_folder import CONFIG

    inputs = os.path.join(out, INPUTS)
    if not os.path.isdir(inputs):
        return
    try:
        with open(os.path.join(out, CONFIG)) as file:
            config = json.load(file)["config"]
        named = {os.path.abspath(str(config.get(key))) for key in ("model", "data_dir", "val_data_dir")}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):  # no run recorded: nothing names them
        named = set()
    for name in os.listdir(inputs):  # only the files this module writes: never one of the user's
        if _WRITTEN.fullmatch(name) and os.path.join(inputs, name) not in named:
            os.remove(os.path.join(inputs, name))
    for folder in (inputs, out) if made else (inputs,):
        if not os.listdir(folder):
            os.rmdir(folder)


def _split_options(options):
    train_fields = {field.name for field in dataclasses.fields(TrainConfig)} - {"repair", "model", "data_dir"}
    repair_fields = {field.name for field in dataclasses.fields(RepairConfig)}
    unknown = sorted(set(options) - train_fields - repair_fields - {"preset"})
    if unknown:
        raise UserError(f"unknown option(s) {', '.join(unknown)}; repair() takes the config fields of "
                        "ar2_tf.runs.config.TrainConfig and RepairConfig, and preset.")
    return ({key: value for key, value in options.items() if key not in repair_fields},
            {key: value for key, value in options.items() if key in repair_fields})


def _model_path(inputs, model) -> str:
    """A model file's path as given; an in-memory model written as `inputs/model-<hash>.keras` (kept if there),
    the hash of its layers' types and settings, how they are connected, and its weights."""
    if isinstance(model, (str, os.PathLike)):
        return os.fspath(model)
    if not hasattr(model, "get_weights") or not hasattr(model, "save"):
        raise UserError(f"model must be a Keras model or the path of a .keras/.h5 file, not {type(model).__name__}.")
    settings = json.dumps([list(_layer_settings(model)), list(_wiring(model))], sort_keys=True, default=str)
    digest = hashlib.sha256(re.sub(r" at 0x[0-9a-f]+", "", settings).encode())  # an object's repr: no address
    for weights in model.get_weights():
        digest.update(str((weights.shape, weights.dtype.str)).encode())
        digest.update(np.ascontiguousarray(weights).tobytes())
    path = os.path.join(inputs, f"model-{digest.hexdigest()[:16]}.keras")
    if not os.path.exists(path):  # the same model, the same file: a later call resumes the run
        from ar2_tf.output_files import save_model_atomic

        os.makedirs(inputs, exist_ok=True)
        save_model_atomic(model, path)
    return path


def _layer_settings(model):
    """Each layer's type and settings, without the names Keras numbers per session (`dense_3`), so that the
    same model built or loaded again is the same model."""
    for layer in model.layers:
        if hasattr(layer, "layers"):  # a nested model
            yield type(layer).__name__
            yield from _layer_settings(layer)
            continue
        try:
            settings = {key: value for key, value in layer.get_config().items() if key != "name"}
        except NotImplementedError:  # a custom layer without get_config: its type and weights say it
            settings = {}
        yield type(layer).__name__, settings


def _wiring(model):
    """How a functional model's operations are connected, for it and each nested model: per operation its type and
    the inputs of each call, every input named by its operation's position in the graph, not by the names Keras
    numbers per session, so that two models of the same layers wired apart (a skip connection, two layers swapped)
    differ and the same model built again does not. Operations that are not layers (`x + 1`) add their settings.
    A Sequential model's wiring is its layer order (`_layer_settings`); a subclassed model's is its code."""
    try:
        config = model.get_config()
    except NotImplementedError:  # a model Keras cannot describe: its layers and weights say it
        config = {}
    if isinstance(config, dict) and "input_layers" in config:
        entries = config["layers"]
        position = {entry["name"]: index for index, entry in enumerate(entries)}
        layers = {layer.name for layer in model.layers}
        for entry in entries:
            own = {} if entry["name"] in layers else {k: v for k, v in entry.get("config", {}).items() if k != "name"}
            yield entry["class_name"], own, _by_position(entry["inbound_nodes"], position)
        yield _by_position(config["input_layers"], position), _by_position(config["output_layers"], position)
    for layer in model.layers:
        if hasattr(layer, "layers"):
            yield from _wiring(layer)


def _by_position(value, position):
    """A functional config's inbound nodes or input/output layers with each `[layer name, node index, tensor
    index]` reference's name replaced by the layer's position."""
    if isinstance(value, dict):
        return {key: _by_position(item, position) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        if (len(value) == 3 and isinstance(value[0], str) and value[0] in position
                and all(isinstance(index, int) for index in value[1:])):
            return [position[value[0]], *value[1:]]
        return [_by_position(item, position) for item in value]
    return value


def _write_arrays(inputs, pairs, what=None) -> str:
    """{split: (images, labels) or None} as `inputs/data-<hash>.npz` in the layout of the `dataset` "npz" (kept if
    there), each pair first checked as its loading checks it; `what` names the argument in messages (default: the
    split)."""
    from ar2_tf.data.user_arrays import check_arrays

    arrays = {}
    for split, pair in pairs.items():
        if pair is None:
            continue
        name = what or split
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            raise UserError(f"{name} must be an (images, labels) pair of arrays, or a data path.")
        check_arrays(*pair, f"the `{name}`")
        arrays[f"x_{split}"], arrays[f"y_{split}"] = (np.asarray(array) for array in pair)
    digest = hashlib.sha256()
    for key in sorted(arrays):
        digest.update(f"{key}{arrays[key].shape}{arrays[key].dtype.str}".encode())
        digest.update(np.ascontiguousarray(arrays[key]).tobytes())
    path = os.path.join(inputs, f"data-{digest.hexdigest()[:16]}.npz")
    if not os.path.exists(path):
        os.makedirs(inputs, exist_ok=True)
        temporary = f"{path}.tmp.npz"
        np.savez(temporary, **arrays)
        os.replace(temporary, path)
    return path
