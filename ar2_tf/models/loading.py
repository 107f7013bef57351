"""Classifiers to repair: loading pretrained files (with the user's custom objects), checking that they fit
the data, and building the paper's architectures.

Every model here ends in global average pooling + Dense(softmax), the head that
CAMs (Eq. 1) need. `resnet50` is `keras.applications.ResNet50` (ImageNet
weights are downloaded on first use); the CIFAR ResNets follow He et al.: v1
ResNet-20/32 (6n+2 layers, 16/32/64 filters) and the 4-stage ResNet-34 with a
3x3 stem that CIFAR papers (including AR2) use.
"""

import importlib
import importlib.util
import os
import re
import sys

import keras
import numpy as np

from ar2_tf.errors import UserError, first_line

# Name -> (blocks per stage, filters per stage, strides per stage). "resnet8" is
# the tiny variant the demo pre-trains in seconds.
_CIFAR_RESNETS = {
    "resnet8": ((1, 1, 1), (16, 32, 64), (1, 2, 2)),
    "resnet20": ((3, 3, 3), (16, 32, 64), (1, 2, 2)),
    "resnet32": ((5, 5, 5), (16, 32, 64), (1, 2, 2)),
    "resnet34": ((3, 4, 6, 3), (64, 128, 256, 512), (1, 2, 2, 2)),
}
ARCHITECTURES = tuple(_CIFAR_RESNETS) + ("resnet50",)


def _basic_block(x, filters, stride, name):
    shortcut = x
    y = keras.layers.Conv2D(filters, 3, stride, "same", use_bias=False, kernel_initializer="he_normal",
                            name=f"{name}_conv1")(x)
    y = keras.layers.BatchNormalization(name=f"{name}_bn1")(y)
    y = keras.layers.Activation("relu", name=f"{name}_relu1")(y)
    y = keras.layers.Conv2D(filters, 3, 1, "same", use_bias=False, kernel_initializer="he_normal",
                            name=f"{name}_conv2")(y)
    y = keras.layers.BatchNormalization(name=f"{name}_bn2")(y)
    if stride != 1 or x.shape[-1] != filters:
        shortcut = keras.layers.Conv2D(filters, 1, stride, use_bias=False, kernel_initializer="he_normal",
                                       name=f"{name}_proj")(x)
        shortcut = keras.layers.BatchNormalization(name=f"{name}_proj_bn")(shortcut)
    y = keras.layers.Add(name=f"{name}_add")([y, shortcut])
    return keras.layers.Activation("relu", name=f"{name}_out")(y)


def cifar_resnet(name: str, num_classes: int, input_shape=(32, 32, 3)):
    """Builds a randomly initialised CIFAR ResNet ("resnet8", "resnet20", "resnet32", "resnet34")."""
    blocks, filters, strides = _CIFAR_RESNETS[name]
    inputs = keras.Input(input_shape, name="image")
    x = keras.layers.Conv2D(filters[0], 3, 1, "same", use_bias=False, kernel_initializer="he_normal",
                            name="stem_conv")(inputs)
    x = keras.layers.BatchNormalization(name="stem_bn")(x)
    x = keras.layers.Activation("relu", name="stem_relu")(x)
    for stage, (count, width, stride) in enumerate(zip(blocks, filters, strides)):
        for block in range(count):
            x = _basic_block(x, width, stride if block == 0 else 1, f"stage{stage + 1}_block{block + 1}")
    x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    outputs = keras.layers.Dense(num_classes, activation="softmax", name="predictions")(x)
    return keras.Model(inputs, outputs, name=name)


def resnet50(num_classes: int = 1000, input_shape=(224, 224, 3), weights="imagenet"):
    """`keras.applications.ResNet50`; ImageNet weights need 1,000 classes and a download.

    `weights` "none" (the command line's spelling) or None gives random initialisation.
    """
    if weights is None or str(weights).lower() == "none":
        weights = None
    if weights == "imagenet" and num_classes != 1000:
        raise UserError(
            f"ImageNet ResNet-50 weights have 1000 classes but the dataset has {num_classes}; "
            "use --weights none (and a pre-training budget) or a model trained on this dataset."
        )
    try:
        return keras.applications.ResNet50(weights=weights, input_shape=input_shape, classes=num_classes)
    except Exception as error:  # the download fails offline with several exception types
        if weights != "imagenet":
            raise
        raise UserError(
            f"could not download the ImageNet ResNet-50 weights ({type(error).__name__}: {error}). "
            "Connect to the internet once (Keras caches them in ~/.keras/models), "
            "or pass --model PATH to a saved model."
        ) from None


def build_model(name: str, num_classes: int, input_shape, weights=None):
    """Builds an architecture from `ARCHITECTURES`; `weights` applies to resnet50 only."""
    if name == "resnet50":
        return resnet50(num_classes, input_shape, weights or "imagenet")
    if name not in _CIFAR_RESNETS:
        raise UserError(f"unknown architecture {name!r}; choose one of: {', '.join(ARCHITECTURES)}, or a model file path.")
    return cifar_resnet(name, num_classes, input_shape)


def load_model_file(path: str, unsafe: bool = False):
    """Loads a pretrained classifier from a `.keras` or legacy `.h5` file.

    `.keras` files load with Keras' `safe_mode` (no deserialised Python lambdas)
    unless `unsafe` is set. SavedModel folders hold a graph, not Keras layers, so
    the feature map Eq. 1 needs cannot be found in them: they are refused with
    the fix (re-save as `.keras`).
    """
    if not os.path.exists(path):
        raise UserError(f"model file {path!r} does not exist; pass --model PATH to a .keras or .h5 file, "
                        f"or an architecture name ({', '.join(ARCHITECTURES)}).")
    if os.path.isdir(path):
        if os.path.exists(os.path.join(path, "saved_model.pb")):
            raise UserError(
                f"{path!r} is a TensorFlow SavedModel: it holds a traced graph without Keras layers, so AR2 "
                "cannot find its feature map and class weights. Load the original Keras model and save it with "
                "model.save('model.keras'), then pass that file."
            )
        raise UserError(f"model path {path!r} is a folder, not a .keras or .h5 file.")
    if not path.endswith((".keras", ".h5", ".hdf5")):
        raise UserError(f"model file {path!r}: unknown format; expected a .keras or .h5 file.")
    try:
        model = keras.saving.load_model(path, compile=False, safe_mode=not unsafe)
    except Exception as error:  # Keras wraps deserialisation errors in several types
        raise UserError(_load_error_message(path, error)) from None
    check_classifier(model, path)
    return model


def _load_error_message(path, error) -> str:
    text = str(error)
    if "safe_mode" in text:
        return (f"model file {path!r} contains Python code (a Lambda layer) that Keras' safe mode refuses to run. "
                "Only if you trust the file, pass --unsafe-model-loading.")
    if "Could not locate" in text or "Unknown layer" in text:
        detail = next((line for line in text.splitlines() if "Could not locate" in line), text.splitlines()[0])
        return (f"model file {path!r} uses a custom class or function that is not registered "
                f"({detail.split('. Make sure')[0].strip()}). Custom objects load only once registered: decorate "
                "them with @keras.saving.register_keras_serializable() and pass that Python file with "
                "--custom-objects FILE.py (or import it before loading).")
    return f"could not load model file {path!r} ({type(error).__name__}: {text.splitlines()[0]}); " \
           "is it a complete Keras model file?"


def import_custom_objects(sources) -> None:
    """Imports each of `sources` (a `.py` file, or the name of a module Python can import), so that the custom
    layers and functions it registers with `@keras.saving.register_keras_serializable()` load with model files.

    This runs that code, like any import: it is what the user names with `--custom-objects`, never
    something read from a model file, a run folder or a config.
    """
    for source in sources:
        try:
            if source.endswith(".py"):
                _import_file(source)
            else:
                importlib.import_module(source)
        except UserError:
            raise
        except Exception as error:  # whatever the user's module raises
            raise UserError(f"--custom-objects {source!r} could not be imported ({type(error).__name__}: "
                            f"{first_line(error)}); pass the .py file, or an importable module name, that defines "
                            "and registers the model's custom layers.") from None


def _import_file(path):
    if not os.path.isfile(path):
        raise UserError(f"--custom-objects {path!r}: no such file; pass the .py file that defines and registers the "
                        "model's custom layers.")
    path = os.path.abspath(path)
    name = "_ar2_custom_objects_" + re.sub(r"\W", "_", os.path.splitext(os.path.basename(path))[0])
    if name in sys.modules:  # imported once per process
        return
    spec = importlib.util.spec_from_file_location(name, path)
    module = sys.modules[name] = importlib.util.module_from_spec(spec)
    folder = os.path.dirname(path)
    sys.path.insert(0, folder)  # for its own imports of the files beside it
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    finally:
        sys.path.remove(folder)


def check_classifier(model, where: str):
    """Raises a UserError unless `model` maps one image batch to [batch, classes]."""
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise UserError(f"model {where!r} has {len(model.inputs)} inputs and {len(model.outputs)} outputs; "
                        "an image classifier has one of each.")
    if len(model.inputs[0].shape) != 4 or len(model.outputs[0].shape) != 2:
        raise UserError(f"model {where!r} maps {tuple(model.inputs[0].shape)} to {tuple(model.outputs[0].shape)}; "
                        "an image classifier maps [batch, H, W, 3] images to [batch, classes].")
    channels = model.inputs[0].shape[-1]
    if channels != 3:
        raise UserError(f"model {where!r} takes {channels}-channel images, but ar2-tf repairs RGB classifiers (the "
                        "corruptions are defined on RGB images). Put a layer in front that maps RGB to its input (for "
                        "grayscale, a 1x1 Conv2D(1) with weights 0.299, 0.587, 0.114), save that model and pass it.")


def run_input_shape(model, image_shape) -> list:
    """[H, W, channels] that `model` runs at on images of `image_shape` (H, W): its own input size, or the
    data's where the model takes any size (None where the data's sizes vary too)."""
    shape = list(model.inputs[0].shape[1:])
    if image_shape is not None:
        shape[:2] = [own if own is not None else int(size) for own, size in zip(shape[:2], image_shape)]
    return shape


def as_two_class_softmax(model):
    """`model`, a binary classifier ending in Dense(1, sigmoid) (or Dense(1) then Activation("sigmoid")), with
    that ending as Dense(2, softmax): the same probabilities, [1 - p, p] for the model's p, since
    softmax([0, z]) = [1 - σ(z), σ(z)]. Class 1 is the sigmoid's positive class (the second class folder by
    name, as Keras' `image_dataset_from_directory` labels them). The layers before it are shared with `model`."""
    dense = _sigmoid_unit(model.layers[-1])
    kernel, *bias = dense.get_weights()
    two = keras.layers.Dense(2, activation="softmax", name=f"{dense.name}_softmax")
    outputs = two(dense.input)
    bias = bias[0] if bias else np.zeros(1, kernel.dtype)
    two.set_weights([np.concatenate([np.zeros_like(kernel), kernel], axis=1), np.concatenate([[0.0], bias])])
    return keras.Model(model.inputs, outputs, name=model.name)


def _sigmoid_unit(last):
    """The Dense(1) layer whose sigmoid is the model's output, `last` itself or the Dense before its sigmoid."""
    def is_dense(layer, activation):
        return type(layer) is keras.layers.Dense and layer.units == 1 and layer.activation is activation

    if is_dense(last, keras.activations.sigmoid):
        return last
    if type(last) is keras.layers.Activation and last.activation is keras.activations.sigmoid:
        before = last.input._keras_history.operation
        if is_dense(before, keras.activations.linear):
            return before
    raise UserError(f"the model's last layer is {type(last).__name__}({last.name!r}), not Dense(1, "
                    "activation='sigmoid') nor Dense(1) then Activation('sigmoid'): it is not a sigmoid binary "
                    "classifier.")


def check_compatible(model, num_classes: int, image_shape):
    """Raises a UserError if the model's class count or input size does not fit the data."""
    outputs = model.outputs[0].shape[-1]
    if outputs == 1 and num_classes == 2:
        raise UserError("the model has one output unit (a sigmoid binary classifier) but ar2-tf needs one score per "
                        "class, as CAMs are per class: convert it to the two-class softmax model with the same "
                        "probabilities, ar2_tf.runs.models.as_two_class_softmax (README, \"Your own model\"), and "
                        "pass that.")
    if outputs != num_classes:
        counted = (" (the data's classes are its class folders or names; an .npz file without class_names "
                   "counts them up to its largest label: add class_names, one name per class)"
                   ) if outputs > num_classes else ""
        raise UserError(f"the model predicts {outputs} classes but the dataset has {num_classes}; "
                        f"pass a model trained on this dataset{counted}.")
    expected = tuple(model.inputs[0].shape[1:])
    if None not in expected[:2] and expected[0] != expected[1]:  # --image-size, crops and corruptions are square
        raise UserError(f"the model takes {expected[0]}x{expected[1]} images, not square ones; ar2-tf feeds square "
                        f"images (--image-size N): rebuild the model on keras.Input(({expected[0]}, {expected[0]}, "
                        f"3)) or keras.Input((None, None, 3)) (a globally pooled head keeps its weights) and pass that.")
    if image_shape is not None and None not in expected[:2] and tuple(image_shape) != expected[:2]:
        raise UserError(f"the model takes {expected[0]}x{expected[1]} images but the data is "
                        f"{image_shape[0]}x{image_shape[1]}; pass --image-size {expected[0]} to resize the data.")
