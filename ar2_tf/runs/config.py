"""Run configuration: AR2's hyperparameters and everything else a repair run needs.

Both are frozen dataclasses with one comment per field; `to_dict`/`from_dict`
round-trip them through the JSON stored in every run folder, and a tuning
search's best-config JSON (`python -m ar2_tf.train --config best.json`) is read the same way.
"""

import dataclasses
import math
import os

from ar2_tf.choices import (
    CORRUPTION_MODES,
    DATASETS,
    PARAM_SETS,
    UNIFIED,
    check_corruption,
    check_data_dir,
    check_precision_policy,
    default_params,
)
from ar2_tf.errors import UserError, check_choice, check_severity
from ar2_tf.output_files import read_json
from ar2_tf.runs.methods import Method, get_method

STEP_UNITS = ("epoch", "batch")
TOPK_SOURCES = ("repaired", "reference")


@dataclasses.dataclass(frozen=True)
class RepairConfig:
    """AR2's hyperparameters (paper Algorithm 1 and Eq. 2). Defaults: the paper's CIFAR setting."""

    k: int = 3  # classes per view in C = topk(x) ∪ topk(x'), Eq. 2
    alpha: float = 1.0  # weight of the corrupted-view term of Eq. 2
    iterations: int = 30  # T: outer iterations
    refine_steps: int = 1  # N: refinement steps per iteration (0 gives fine-tuning alone)
    finetune_steps: int = 1  # M: fine-tuning steps per iteration
    step_unit: str = "epoch"  # what one step is: "epoch" (a pass over the data) or "batch"
    cam_normalization: str = "l2"  # CAM scaling before the MSE: "l2" (unit norm per map) or "none"
    topk_from: str = "repaired"  # whose clean prediction gives topk(x): the "repaired" model or the "reference"
    attention: str = "auto"  # Eq. 2's maps: "cam" (exact, linear heads), "gradcam" (any head), "auto" (cam if exact)
    # The paper gives no learning rates; 0.003 for both phases is the measured choice (docs/results/learning-rates.md).
    refine_learning_rate: float = 0.003  # SGD learning rate of the refinement (CAM alignment) phase
    finetune_learning_rate: float = 0.003  # SGD learning rate of the fine-tuning (cross-entropy) phase
    momentum: float = 0.9  # SGD momentum of both phases (each phase keeps its own optimizer state)

    def validate(self):
        for name in ("k", "iterations"):
            if getattr(self, name) < 1:
                raise UserError(f"`{name}` must be at least 1, got {getattr(self, name)}.")
        if self.refine_steps < 0 or self.finetune_steps < 0 or self.refine_steps + self.finetune_steps == 0:
            raise UserError("`refine_steps` (N) and `finetune_steps` (M) must be >= 0 and not both 0.")
        if not 0 <= self.alpha < math.inf:  # NaN fails too
            raise UserError(f"`alpha` must be a finite number >= 0, got {self.alpha}.")
        for name in ("refine_learning_rate", "finetune_learning_rate"):
            if not 0 < getattr(self, name) < math.inf:
                raise UserError(f"`{name}` must be a finite number > 0, got {getattr(self, name)}.")
        if not 0 <= self.momentum < 1:
            raise UserError(f"`momentum` must be in [0, 1), got {self.momentum}.")
        for name, choices in (("step_unit", STEP_UNITS), ("topk_from", TOPK_SOURCES),
                              ("cam_normalization", ("l2", "none")), ("attention", ("auto", "cam", "gradcam"))):
            if getattr(self, name) not in choices:
                raise UserError(f"`{name}` must be one of {', '.join(choices)}, got {getattr(self, name)!r}.")
        return self

    def class_set_note(self, num_classes: int):
        """A line to print when k is more than the data's classes (the preset's k on a small dataset, say):
        each view's top k is then every class (`ar2_tf.method.losses.select_classes`). None otherwise."""
        if self.k > num_classes:
            return (f"note: k = {self.k} is more than the {num_classes} classes of the data, so Eq. 2's class set "
                    f"is all {num_classes} classes (a smaller `k` chooses fewer).")
        return None


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """One repair run: data, model, corruption and method. `repair` holds AR2's hyperparameters."""

    dataset: str = "demo"  # demo | cifar10 | cifar100 | imagenet | folder
    data_dir: str = None  # folder or .npz file with the data; None: tfds download (or the demo generator)
    eval_data_dir: str = None  # optional other source for the test split (e.g. exact-pixel CIFAR test images)
    model: str = "resnet8"  # a .keras/.h5 file, or an architecture name (resnet8/20/32/34/50)
    weights: str = None  # resnet50 only: "imagenet" (download) or "none" (random init, then pre-training)
    pretrain_epochs: int = 0  # vanilla pre-training on clean data for a randomly initialised architecture
    corruption: str = "gaussian_noise"  # the corruption to repair for (one model per corruption)
    severity: int = 3  # training severity (the paper: 3)
    corruption_params: str = None  # "cifar" or "imagenet" parameter set; None: by dataset
    corruption_backend: str = "native"  # "native" TF ops or the imagecorruptions "reference"
    preprocessing: str = None  # model input preprocessing (see ar2_tf.data.preprocessing); None: by model
    image_size: int = None  # resize images to this square size; None: keep (CIFAR) or 224 (ImageNet)
    batch_size: int = 128  # images per batch (each yields a clean and a corrupted view)
    train_size: int = None  # seeded random subset of the training split (CPU runs); None: all
    test_size: int = None  # seeded random subset of the test split; None: all
    strict_images: bool = False  # refuse image folders holding unreadable files instead of skipping them
    val_data_dir: str = None  # the user's held-out validation images (read like eval_data_dir: its test split)
    val_size: int = None  # validation images (ar2_tf.data.holdout); None: half the test split, at most 1,000; 0: none
    max_clean_drop: float = 1.0  # points of clean-error rise (paired estimate on validation) a kept phase may cost
    method: str = "ar2"  # a trainer method of ar2_tf.runs.methods: "ar2", "finetune" (N = 0), "augmix"
    feature_layer: str = None  # override: the layer whose output is the last feature map
    dense_layer: str = None  # override: the class Dense layer
    seed: int = 0  # seeds data order, corruption noise and subsets
    unsafe_model_loading: bool = False  # allow .keras files with Python lambdas (runs their code)
    corruption_mode: str = "dynamic"  # "dynamic": corrupt each batch on the fly; "static": read precomputed shards
    precomputed_dir: str = None  # static mode: shards written by `python -m ar2_tf.precompute`
    mixed_precision: str = None  # None (float32), "mixed_float16" or "mixed_bfloat16" (see ar2_tf.runs.precision)
    jit_compile: bool = None  # XLA-compile the train steps; None: Keras' choice (on with a GPU, off on CPU)
    repair: RepairConfig = RepairConfig()

    @property
    def params(self) -> str:
        """The corruption parameter set: explicit, else ImageNet-C's for ImageNet-size data."""
        return default_params(self.dataset, self.corruption_params)


def to_dict(config: TrainConfig) -> dict:
    return dataclasses.asdict(config)


def from_dict(values: dict) -> TrainConfig:
    """Builds a TrainConfig from a dict; unknown keys are an error that names them."""
    values = dict(values)
    repair = values.pop("repair", {}) or {}
    known = {field.name for field in dataclasses.fields(TrainConfig)}
    repair_known = {field.name for field in dataclasses.fields(RepairConfig)}
    # A tuning search's best.json may hold AR2 fields at the top level.
    for key in list(values):
        if key in repair_known and key not in known:
            repair[key] = values.pop(key)
    unknown = sorted(set(values) - known) + sorted(set(repair) - repair_known)
    if unknown:
        raise UserError(f"unknown config field(s): {', '.join(unknown)}.")
    return TrainConfig(**values, repair=RepairConfig(**repair))


def load_json(path: str) -> dict:
    """A config file of fields (`python -m ar2_tf.train --config`)."""
    return read_json(path, "pass a JSON object of config fields, e.g. a tuning search's best.json.")


# Presets: the paper's two settings, the demo's and a tiny one for CPU tests. Each names the command that runs it.
PRESETS = {
    # python -m ar2_tf.train --dataset cifar10 --model M.h5 --corruption gaussian_noise --preset cifar-paper
    "cifar-paper": RepairConfig(k=3, alpha=1.0, iterations=30, refine_steps=1, finetune_steps=1),
    # python -m ar2_tf.train --dataset imagenet --model resnet50 --corruption fog --preset imagenet-paper
    "imagenet-paper": RepairConfig(k=5, alpha=0.8, iterations=10, refine_steps=2, finetune_steps=1),
    # python -m ar2_tf.train  (the offline demo: 3 iterations of one refinement and one fine-tuning epoch; its toy
    # model was measured at 0.01, the README's demo output)
    "demo": RepairConfig(k=2, alpha=1.0, iterations=3, refine_steps=1, finetune_steps=1, refine_learning_rate=0.01,
                         finetune_learning_rate=0.01),
    # python -m ar2_tf.train --preset tiny  (seconds on a CPU; used by tests)
    "tiny": RepairConfig(k=2, alpha=1.0, iterations=1, refine_steps=1, finetune_steps=1, step_unit="batch"),
}

# Per-dataset defaults of the fields a user leaves out, and the preset of each dataset. Every command that
# builds a TrainConfig (train, benchmark, tuning) goes through `resolve`, so they agree.
DATASET_DEFAULTS = {
    # The demo's toy ResNet-8 is 98% accurate on its held-out shapes and gives up 2-3 points to any repair at the
    # default learning rates (measured: clean validation error 1.7% -> 4.0% at the kept phase): it allows 5.
    "demo": {"model": "resnet8", "pretrain_epochs": 8, "batch_size": 64, "preset": "demo", "max_clean_drop": 5.0},
    "cifar10": {"preset": "cifar-paper"},
    "cifar100": {"preset": "cifar-paper"},
    "imagenet": {"model": "resnet50", "batch_size": 32, "preset": "imagenet-paper"},
    "folder": {"model": "resnet50", "batch_size": 32, "preset": "imagenet-paper"},
    "npz": {"preset": "cifar-paper"},  # the user's own arrays, kept at their size like CIFAR's
}
MODEL_FILE_SUFFIXES = (".keras", ".h5", ".hdf5")


def resolve(dataset=None, preset=None, loaded=None, fields=None, repair_fields=None) -> TrainConfig:
    """The run's config from, in increasing priority: TrainConfig defaults, the dataset's defaults, the
    preset, a config file's fields (`loaded`), explicit `fields` and AR2 `repair_fields`.

    A config file only sets the fields it names, so a tuning search's best.json
    (AR2 fields only) keeps the dataset's defaults for everything else. A model
    given as a file is already trained: its `pretrain_epochs` is 0.

    Raises:
        UserError: an unknown dataset, preset or config field, or an invalid severity.
    """
    loaded, fields, repair_fields = dict(loaded or {}), dict(fields or {}), dict(repair_fields or {})
    dataset = check_choice("dataset", dataset or loaded.get("dataset") or "demo", DATASETS)
    defaults = DATASET_DEFAULTS[dataset]
    values = dataclasses.asdict(TrainConfig(dataset=dataset))
    values.update({key: value for key, value in defaults.items() if key != "preset"})
    preset = preset or loaded.pop("preset", None) or defaults.get("preset", "cifar-paper")
    if preset not in PRESETS:
        raise UserError(f"unknown preset {preset!r}; choose one of: {', '.join(PRESETS)}.")
    values["repair"] = dataclasses.asdict(PRESETS[preset])
    for key, value in loaded.items():
        if key == "repair":
            values["repair"].update(value or {})
        elif key in values["repair"] and key not in values:
            values["repair"][key] = value
        else:
            values[key] = value  # unknown keys are reported by from_dict below
    values.update(fields)
    values["repair"].update(repair_fields)
    values["severity"] = check_severity(values["severity"])
    if str(values.get("model") or "").endswith(MODEL_FILE_SUFFIXES):
        values["pretrain_epochs"] = 0
    return from_dict(values)


def check(config: TrainConfig) -> TrainConfig:
    """Every field a user can get wrong (`check_run`); returns `config`."""
    check_run(config)
    return config


def check_run(config: TrainConfig) -> Method:
    """Every field a user can get wrong, checked before any work starts, TensorFlow-free, so that a command
    answers a bad flag at once; returns the method's registry entry (`ar2_tf.runs.plan.plan_run` checks a
    run's config here, once, and keeps the entry)."""
    if config.corruption != UNIFIED:
        check_corruption(config.corruption)
    check_severity(config.severity)
    check_data_dir(config.dataset, config.data_dir)
    method = get_method(config.method)
    check_choice("corruption params", config.params, PARAM_SETS)
    if config.batch_size < 1:
        raise UserError(f"`batch_size` must be positive, got {config.batch_size}.")
    if config.val_data_dir and not os.path.exists(config.val_data_dir):
        raise UserError(f"`val_data_dir` {config.val_data_dir!r} does not exist; pass a folder or .npz file of "
                        "held-out images, read as `eval_data_dir` is.")
    if config.val_size is not None and config.val_size < 0:
        raise UserError(f"`val_size` must be 0 (no validation) or more, got {config.val_size}.")
    if not 0 <= config.max_clean_drop < float("inf"):  # NaN fails too
        raise UserError(f"`max_clean_drop` must be a number of points >= 0, got {config.max_clean_drop}.")
    config.repair.validate()
    check_precision_policy(config.mixed_precision)
    check_choice("corruption mode", config.corruption_mode, CORRUPTION_MODES)
    return method
