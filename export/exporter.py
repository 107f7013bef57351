"""Export repaired runs as versioned, verified SavedModels plus a TF Serving `models.config`.

`export_runs` is what `python -m export` calls. For each run folder it writes
`<out>/<model_name>/<version>/` (a SavedModel with the signatures described in
`export.serving_module`, `assets/class_names.txt`, and
`assets.extra/ar2_export.json` recording where it came from), verifies it by
reloading (`export.verify`), installs it atomically (`export.layout`), adds the
model to `<out>/models.config` (`export.model_config`), and prints its
signatures. The network is exported with BatchNorm folded into the convolutions
(faster answers), or as it is when the fold's rounding misses the check.
"""

import dataclasses
import json
import os
import shutil
import tempfile

import numpy as np
import tensorflow as tf

from ar2_tf.data.sources import load_dataset
from ar2_tf.errors import UserError
from ar2_tf.output_files import environment
from ar2_tf.runs.selection import breaks_clean_constraint, clean_rise
from ar2_tf.safe_paths import safe_join
from export import layout, model_config
from export.finished_run import check_model_name, model_name, read_run
from export.limits import MAX_BATCH_SIZE, MAX_IMAGE_SIZE
from export.serving_module import CLASS_NAMES_FILE, ServingModule
from export.verify import ExportVerificationError, signature_summary, verify_export

VERIFY_COUNT = 8  # real images each export is checked on
METADATA_FILE = "ar2_export.json"


@dataclasses.dataclass(frozen=True)
class ExportOptions:
    """How to export; every field has a command-line flag of the same name."""

    version: int = None  # version number to write; None: one more than the newest (1 for a new model)
    force: bool = False  # with `version`: replace that version if it exists
    max_image_size: int = MAX_IMAGE_SIZE  # largest image height/width the signatures accept
    max_batch_size: int = MAX_BATCH_SIZE  # most images the signatures accept per request
    base_path: str = None  # folder that holds the models as the server sees it; None: the absolute `out`
    verify_images: str = None  # .npz with uint8 images (x_test or images); None: the run's own test split
    unsafe_model_loading: bool = False  # allow model.keras files with Python lambdas (runs their code)
    allow_clean_drop: bool = False  # export a run whose clean test error rose more than its `max_clean_drop`

    def validate(self):
        if self.force and self.version is None:
            raise UserError("`force` replaces an existing version only together with `version` N.")
        for name in ("max_image_size", "max_batch_size"):
            if getattr(self, name) < 1:
                raise UserError(f"`{name}` must be positive, got {getattr(self, name)}.")
        return self


def export_runs(run_paths, out, names=None, options=ExportOptions(), log=print) -> list:
    """Exports each run folder in `run_paths` to `out`; returns one summary dict per run.

    Args:
        run_paths: run folders written by `python -m ar2_tf.train --out`.
        out: the serving folder (created if missing).
        names: optional model names, one per run; default `export.finished_run.model_name`.
        options: `ExportOptions`.
        log: where progress and signature summaries go.

    Raises:
        UserError: a run, name, version or option is wrong; nothing is exported then.
    """
    options.validate()
    if not run_paths:
        raise UserError("pass at least one run folder in `run_paths`.")
    if names and len(names) != len(run_paths):
        raise UserError(f"got {len(names)} `names` for {len(run_paths)} `run_paths`; give one per run.")
    runs = [read_run(path, options.unsafe_model_loading) for path in run_paths]
    for run in runs:
        if not options.allow_clean_drop and breaks_clean_constraint(run.report):
            raise UserError(
                f"run {run.path!r} raised the clean test error by {clean_rise(run.report):.2f} points (from "
                f"{run.report['before']['clean']:.2f}% to {run.report['after']['clean']:.2f}%), more than its "
                f"`max_clean_drop` {run.config.get('max_clean_drop', 1.0):g}: it is less accurate on clean images than "
                "the model it would replace. Pass `allow_clean_drop` to export it anyway.")
    names = [check_model_name(name) for name in names] if names else [model_name(run.config) for run in runs]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise UserError(f"several runs would be exported as {', '.join(repeated)}; give each run its own name in "
                        "`names`.")
    out = os.path.abspath(out)
    os.makedirs(out, exist_ok=True)
    model_dirs = [safe_join(out, name) for name in names]
    for model_dir in model_dirs:  # refuse an existing `version` before any work
        layout.choose_version(model_dir, options.version, options.force)
    base_path = options.base_path or out
    results = []
    for run, name, model_dir in zip(runs, names, model_dirs):
        result = export_run(run, name, model_dir, options, log)
        model_config.add_models(os.path.join(out, model_config.CONFIG_FILE), {name: f"{base_path.rstrip('/')}/{name}"})
        results.append(result)
    log(f"TF Serving config: {os.path.join(out, model_config.CONFIG_FILE)}")
    return results


def export_run(run, name, model_dir, options=ExportOptions(), log=print) -> dict:
    """Writes, verifies and installs one version of `run` under `model_dir`; returns its summary."""
    version = layout.choose_version(model_dir, options.version, options.force)
    images = verification_images(run, options.verify_images, min(VERIFY_COUNT, options.max_batch_size))
    summary = {}

    def write(folder):
        for fold in (True, False):  # folded, unless its rounding exceeds the check's tolerance (module docstring)
            with tempfile.TemporaryDirectory() as scratch:
                module = _build_module(run, scratch, options, fold)
                if fold and not module.has_cam:
                    log(f"note: {name} has no cam signature ({module.cam_unavailable})")
                tf.saved_model.save(module, folder, signatures=module.signatures())
            try:
                summary.update(verify_export(folder, run, images, max_image_size=options.max_image_size),
                               batchnorm_folded=module.folded_batchnorms)
                break
            except ExportVerificationError as error:
                if not module.folded_batchnorms:  # nothing folded: the model itself disagrees
                    raise
                log(f"note: {name} with BatchNorm folded differs from the Keras model beyond the check's tolerance "
                    f"({error}); exporting it unfolded")
                _empty(folder)
        _write_metadata(folder, {
            "model_name": name, "version": version, "run": os.path.abspath(run.path), "config": run.config,
            "preprocessing": run.preprocessing, "resize": run.resize, "input_shape": list(run.input_shape),
            "class_names": list(run.class_names), "max_image_size": options.max_image_size,
            "max_batch_size": options.max_batch_size, "verification": summary, "environment": environment()})

    path = layout.write_version(model_dir, version, write, replace=options.force)
    log(f"exported {run.path} -> {path} (model {name}, version {version}); verified on {summary['images']} real "
        f"images: {', '.join(summary['checked'])}; largest probability difference "
        f"{summary['max_probability_difference']:.2g}; {summary['batchnorm_folded']} BatchNorm layer(s) folded")
    log(signature_summary(path))
    return {"name": name, "version": version, "path": path, **summary}


def _write_metadata(folder, metadata):
    # assets.extra/ is where TF Serving expects extra files; the version folder is still
    # hidden here, so a plain write is atomic enough.
    os.makedirs(os.path.join(folder, "assets.extra"))
    with open(os.path.join(folder, "assets.extra", METADATA_FILE), "w") as file:
        json.dump(metadata, file, indent=2, sort_keys=True, default=str)


def _empty(folder):
    for entry in os.scandir(folder):
        if entry.is_dir():
            shutil.rmtree(entry.path)
        else:
            os.remove(entry.path)


def _build_module(run, scratch, options, fold=True):
    class_names_path = os.path.join(scratch, CLASS_NAMES_FILE)
    with open(class_names_path, "w", encoding="utf-8") as file:
        # One name per line: a line break inside a name would shift every later class.
        file.writelines(" ".join(name.splitlines()) + "\n" for name in run.class_names)
    return ServingModule(run.model, class_names_path, preprocessing=run.preprocessing, resize=run.resize,
                         max_image_size=options.max_image_size, max_batch_size=options.max_batch_size,
                         feature_layer=run.config.get("feature_layer"), dense_layer=run.config.get("dense_layer"),
                         attention=(run.config.get("repair") or {}).get("attention", "auto"),
                         input_shape=run.input_shape, fold=fold)


def verification_images(run, path=None, count=VERIFY_COUNT):
    """Real uint8 images [count, H, W, 3] to verify an export with: from `path` (.npz), else the run's test split.

    Raises:
        UserError: no images can be found without downloading, or the file holds no uint8 images.
    """
    if path is not None:
        images = _npz_images(path)
    else:
        config = run.config
        data_dir = config.get("eval_data_dir") or config.get("data_dir")
        if config.get("dataset") != "demo" and not data_dir:
            raise UserError(f"run {run.path!r} was trained on downloaded {config.get('dataset')} data; pass "
                            "`verify_images` with an .npz file (uint8 images under x_test or images) to verify its "
                            "export.")
        try:
            source = load_dataset(config["dataset"], data_dir, train_size=1, test_size=count,
                                  image_size=config.get("image_size"), seed=config.get("seed", 0))
        except UserError as error:
            raise UserError(f"cannot load test images of run {run.path!r} to verify the export ({error}); "
                            "pass `verify_images` with an .npz file (uint8 images under x_test or images).") from None
        images = np.stack([image.numpy() for image, _ in source.test.take(count)])
    return images[:count]


def _npz_images(path):
    try:
        with np.load(path, allow_pickle=False) as data:
            key = next((key for key in ("x_test", "images") if key in data.files), None)
            if key is None:
                raise UserError(f"`verify_images` {path!r} has neither x_test nor images (it has "
                                f"{', '.join(data.files)}).")
            images = data[key]
    except (OSError, ValueError) as error:
        raise UserError(f"cannot read `verify_images` {path!r}: {error}") from None
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3 or not len(images):
        raise UserError(f"`verify_images` {path!r}: expected uint8 images [N, H, W, 3], got {images.dtype} "
                        f"{images.shape}.")
    return images
