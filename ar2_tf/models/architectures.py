"""The paper's architectures, built with random weights (or ResNet-50's ImageNet weights).

Every model here ends in global average pooling + Dense(softmax), the head that
CAMs (Eq. 1) need. `resnet50` is `keras.applications.ResNet50` (ImageNet
weights are downloaded on first use); the CIFAR ResNets follow He et al.: v1
ResNet-20/32 (6n+2 layers, 16/32/64 filters) and the 4-stage ResNet-34 with a
3x3 stem that CIFAR papers (including AR2) use.
"""

import keras

from ar2_tf.errors import UserError

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
            "use `weights` none (and a pre-training budget) or a model trained on this dataset."
        )
    try:
        return keras.applications.ResNet50(weights=weights, input_shape=input_shape, classes=num_classes)
    except Exception as error:  # the download fails offline with several exception types
        if weights != "imagenet":
            raise
        raise UserError(
            f"could not download the ImageNet ResNet-50 weights ({type(error).__name__}: {error}). "
            "Connect to the internet once (Keras caches them in ~/.keras/models), "
            "or pass `model` as the path of a saved model."
        ) from None


def build_model(name: str, num_classes: int, input_shape, weights=None):
    """Builds an architecture from `ARCHITECTURES`; `weights` applies to resnet50 only."""
    if name == "resnet50":
        return resnet50(num_classes, input_shape, weights or "imagenet")
    if name not in _CIFAR_RESNETS:
        raise UserError(f"unknown architecture {name!r}; choose one of: {', '.join(ARCHITECTURES)}, or a model file path.")
    return cifar_resnet(name, num_classes, input_shape)
