"""Model input preprocessing, by name.

Pipelines carry images as uint8 pixels (where corruptions are defined) and turn
them into model inputs at the very end with one of these functions, so the
training pipeline, evaluation and the exported serving graph all apply exactly
the same transformation. The name is stored in each run's config.
"""

import keras
import tensorflow as tf

from ar2_tf.errors import check_choice


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


PREPROCESSORS = {
    "unit": _unit,
    "caffe": _caffe,
    "tf": _symmetric,
    "torch": _torch,
    "none": _raw,
}


# The one rule for a model's default preprocessing (train, evaluate, export and tuning all call
# `default_preprocessing`): the name given, else the built architecture's, else the dataset's. A model
# file carries no record of its preprocessing, so files follow the dataset: ImageNet-size data defaults to
# keras.applications' ResNet-50 ("caffe"), everything else to x/255.
ARCHITECTURE_PREPROCESSING = {"resnet8": "unit", "resnet20": "unit", "resnet32": "unit", "resnet34": "unit",
                              "resnet50": "caffe"}
DATASET_PREPROCESSING = {"imagenet": "caffe", "folder": "caffe"}


def default_preprocessing(model: str, dataset: str, given: str = None) -> str:
    """The preprocessing name of `model` (an architecture name or a file) on `dataset`, unless `given`."""
    if given:
        return check_choice("preprocessing", given, PREPROCESSORS)
    if model in ARCHITECTURE_PREPROCESSING:
        return ARCHITECTURE_PREPROCESSING[model]
    return DATASET_PREPROCESSING.get(dataset, "unit")


def get_preprocessor(name: str):
    """Returns the function mapping uint8 pixels [..., H, W, 3] to model inputs (float32)."""
    return PREPROCESSORS[check_choice("preprocessing", name, PREPROCESSORS)]
