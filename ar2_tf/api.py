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

import contextlib
import dataclasses
import os

import numpy as np

from ar2_tf.errors import UserError, speaking
from ar2_tf.runs import given_inputs
from ar2_tf.runs.config import RepairConfig, TrainConfig, resolve
from ar2_tf.runs.plan import default_out, plan_run

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

        return load_model_file(os.path.join(self.out, MODEL), unsafe_model_loading=self.unsafe_model_loading)


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
    # The inputs first, since their content names their files; a refusal from here on removes them.
    with _callers_inputs(out) as (inputs, written):
        if not from_path:
            data_dir = given_inputs.write_arrays(inputs, {"train": train, "test": test})
            written[data_dir] = "the `train` arrays" if test is None else "the `train` and `test` arrays"
        if val is not None:  # a test-split-only file: read as a `val_data_dir` is
            given = isinstance(val, (str, os.PathLike))
            val_dir = os.fspath(val) if given else given_inputs.write_arrays(inputs, {"test": val}, what="val")
            written.setdefault(val_dir, "the `val` arrays")
            config = dataclasses.replace(config, val_data_dir=val_dir)
        model_path = _model_file(inputs, model, written)
        plan = plan_run(dataclasses.replace(config, data_dir=data_dir, model=model_path), out)
        return _run(plan, force=force, strategy=strategy, verbose=verbose)


def _is_dataset(value) -> bool:
    """Whether `value` is a `tf.data.Dataset`, told without importing TensorFlow."""
    return type(value).__module__.startswith("tensorflow") and hasattr(value, "element_spec")


def _repair_datasets(model, train, test, val, config, out, *, force, strategy, verbose) -> RepairResult:
    """`repair` for data given as `tf.data.Dataset`s (array pairs among them are made datasets too): the datasets
    are read once for their sizes and labels, and the run's plan reads them instead of a data path. The run
    folder cannot tell whether a dataset changed, so a run already in `out` is refused unless `force`, which
    discards it."""
    from ar2_tf.data import given_datasets
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
    with _callers_inputs(out) as (inputs, written):
        written.update({given_datasets.TRAIN: "the `train` dataset", given_datasets.VAL: "the `val` dataset"})
        data = {name: _as_dataset(value, name) for name, value in (("train", train), ("test", test), ("val", val))}
        given = given_datasets.given_datasets(data["train"], data["test"], data["val"], image_size=config.image_size,
                                              train_subset=config.train_size is not None)
        model_path = _model_file(inputs, model, written)
        plan = plan_run(dataclasses.replace(config, data_dir=given_datasets.TRAIN, model=model_path), out,
                        given=given)
        if val is not None:  # recorded once the config is checked: the check looks for a `val_data_dir` path
            plan = dataclasses.replace(plan, config=dataclasses.replace(plan.config, val_data_dir=given_datasets.VAL))
        return _run(plan, force=force, strategy=strategy, verbose=verbose)


@contextlib.contextmanager
def _callers_inputs(out):
    """Yields `<out>/inputs/` and {a file written there or a name recorded for data: the argument it holds, as
    messages name it}; a `UserError` inside is worded as the caller of `repair` reads it, and the inputs no run
    names are removed on the way out (`given_inputs.tidy`)."""
    inputs, made = os.path.join(out, given_inputs.INPUTS), not os.path.exists(out)
    written = {}
    try:
        yield inputs, written
    except UserError as error:
        raise UserError(_in_callers_words(error, written)) from error
    finally:
        given_inputs.tidy(out, made)


def _model_file(inputs, model, written) -> str:
    """The model's file: its path as given, or an in-memory model written to `inputs` (recorded in `written`)."""
    path = given_inputs.model_path(inputs, model)
    if not isinstance(model, (str, os.PathLike)):
        written[path] = "the `model`"
    return path


def _run(plan, **options):
    """Runs `plan` (notes name `repair`'s arguments); the finished run, or None on a non-chief worker."""
    from ar2_tf.runs.repair_run import run_repair

    with speaking(_ARGUMENTS):
        report = run_repair(plan, **options)
    return None if report is None else RepairResult(plan.out, report, plan.config.unsafe_model_loading)


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


def _split_options(options):
    train_fields = {field.name for field in dataclasses.fields(TrainConfig)} - {"repair", "model", "data_dir"}
    repair_fields = {field.name for field in dataclasses.fields(RepairConfig)}
    unknown = sorted(set(options) - train_fields - repair_fields - {"preset"})
    if unknown:
        raise UserError(f"unknown option(s) {', '.join(unknown)}; repair() takes the config fields of "
                        "ar2_tf.runs.config.TrainConfig and RepairConfig, and preset.")
    return ({key: value for key, value in options.items() if key not in repair_fields},
            {key: value for key, value in options.items() if key in repair_fields})
