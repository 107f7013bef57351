"""Model input preprocessing: a name, or the user's own mean/std, stored as one spec string.

Pipelines carry images as uint8 pixels (where corruptions are defined) and turn
them into model inputs at the very end with one of these functions, so the
training pipeline, evaluation and the exported serving graph all apply exactly
the same transformation. The spec is stored in each run's config and
report.json; everything downstream (evaluation of a run folder, tuning, the
TF Serving export) calls `get_preprocessor(spec)` with it unchanged.

A spec is a name of `PREPROCESSORS` (unit, caffe, tf, torch, none) or
`meanstd:MEAN:STD` with the training set's own statistics; what a spec may be,
and the command-line flags that build one, are `ar2_tf.data.preprocessing_spec`
(TensorFlow-free: commands check their flags before importing TensorFlow).

The default when none is given (`default_preprocessing`, the one rule train,
evaluate, export and tuning follow):
1. an architecture built here uses its own (`ARCHITECTURE_PREPROCESSING`);
2. a model file whose network starts with its own `Rescaling` or
   `Normalization` layer (among the layers before the first Conv/Dense, nested
   models included, as in keras.applications' EfficientNet) expects raw pixels:
   "none" (`model_carries_preprocessing`, read from the file's saved config
   without building the model);
3. any other model file follows the dataset: ImageNet-size data defaults to
   keras.applications' ResNet-50 ("caffe"), everything else to x/255 ("unit").
"""

import functools
import json
import os
import zipfile

import keras
import tensorflow as tf

from ar2_tf.data.preprocessing_spec import MEANSTD, check_preprocessing, parse_meanstd


def _unit(x):
    # Classic Keras CIFAR models (e.g. the shared ResNet-20): x / 255.
    return tf.cast(x, tf.float32) / 255.0


def _caffe(x):
    # keras.applications.resnet50: RGB -> BGR, ImageNet mean subtracted, no scaling.
    return keras.applications.resnet50.preprocess_input(tf.cast(x, tf.float32))


def _symmetric(x):
    # keras.applications "tf" mode (MobileNet, EfficientNetV2 without rescaling): [-1, 1].
    return tf.cast(x, tf.float32) / 127.5 - 1.0


def _torch(x):
    # "torch" mode: x / 255, then ImageNet mean / std per channel.
    mean = tf.constant([0.485, 0.456, 0.406])
    std = tf.constant([0.229, 0.224, 0.225])
    return (tf.cast(x, tf.float32) / 255.0 - mean) / std


def _raw(x):
    return tf.cast(x, tf.float32)


def meanstd(x, mean, std):
    """`(x - mean) / std` per channel: `mean` and `std` are 1 or 3 numbers in pixel units 0-255."""
    return (tf.cast(x, tf.float32) - tf.constant(mean, tf.float32)) / tf.constant(std, tf.float32)


PREPROCESSORS = {
    "unit": _unit,
    "caffe": _caffe,
    "tf": _symmetric,
    "torch": _torch,
    "none": _raw,
}  # keyed by preprocessing_spec.NAMES, in its order (tests/data/test_preprocessing.py)


def get_preprocessor(spec: str):
    """Returns the function mapping uint8 pixels [..., H, W, 3] to model inputs (float32)."""
    spec = check_preprocessing(spec)
    if spec.startswith(MEANSTD + ":"):
        mean, std = parse_meanstd(spec)
        return functools.partial(meanstd, mean=mean, std=std)
    return PREPROCESSORS[spec]


# --- The default ---------------------------------------------------------------------------------------------------

ARCHITECTURE_PREPROCESSING = {"resnet8": "unit", "resnet20": "unit", "resnet32": "unit", "resnet34": "unit",
                              "resnet50": "caffe"}
DATASET_PREPROCESSING = {"imagenet": "caffe", "folder": "caffe"}
CARRIED_LAYERS = ("Rescaling", "Normalization")  # preprocessing layers a model may carry itself


def _starts_with_preprocessing(layer_names) -> bool:
    """Whether a `CARRIED_LAYERS` layer comes before the first Conv/Dense layer (in graph order)."""
    for name in layer_names:
        if name in CARRIED_LAYERS:
            return True
        if "Conv" in name or "Dense" in name:
            return False
    return False


def _model_layer_names(model):
    for layer in model.layers:
        if isinstance(layer, keras.Model):  # a nested model, e.g. a keras.applications base
            yield from _model_layer_names(layer)
        else:
            yield type(layer).__name__


def _config_layer_names(config):
    for layer in (config.get("config") or {}).get("layers") or ():
        if isinstance(layer.get("config"), dict) and "layers" in layer["config"]:
            yield from _config_layer_names(layer)
        else:
            yield layer.get("class_name") or ""


def _saved_config(path):
    """The model config saved in a .keras or .h5 file, or None (the model loader reports unreadable files)."""
    try:
        if path.endswith(".keras"):
            with zipfile.ZipFile(path) as archive:
                return json.loads(archive.read("config.json"))
        if path.endswith((".h5", ".hdf5")):
            import h5py

            with h5py.File(path, "r") as file:
                text = file.attrs.get("model_config")
            return json.loads(text) if text is not None else None
    except (OSError, KeyError, ValueError, zipfile.BadZipFile):
        return None
    return None


def model_carries_preprocessing(model) -> bool:
    """Whether `model` (a Keras model, or the path of a .keras/.h5 file) starts with its own `Rescaling` or
    `Normalization` layer, and so expects raw pixels 0-255. A file is judged from its saved config: no
    weights are loaded and no model is built (so no variables appear under a distribution strategy)."""
    if isinstance(model, (str, os.PathLike)):
        path = os.fspath(model)
        config = _saved_config(path) if os.path.isfile(path) else None
        return isinstance(config, dict) and _starts_with_preprocessing(_config_layer_names(config))
    return _starts_with_preprocessing(_model_layer_names(model))


def default_preprocessing(model: str, dataset: str, given: str = None, carries: bool = None) -> str:
    """The preprocessing spec of `model` (an architecture name or a file) on `dataset`, unless `given`.

    `carries`: whether the model carries its own preprocessing layers; None: look inside the file `model`.
    """
    if given:
        return check_preprocessing(given)
    if model in ARCHITECTURE_PREPROCESSING:
        return ARCHITECTURE_PREPROCESSING[model]
    if carries is None:
        carries = isinstance(model, (str, os.PathLike)) and model_carries_preprocessing(model)
    if carries:
        return "none"
    return DATASET_PREPROCESSING.get(dataset, "unit")
