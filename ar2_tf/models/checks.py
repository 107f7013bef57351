"""Does a classifier fit ar2-tf and the data: one image input, [batch, classes] out, RGB, the data's classes
and image size."""

from ar2_tf.errors import UserError


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


def check_compatible(model, num_classes: int, image_shape):
    """Raises a UserError if the model's class count or input size does not fit the data."""
    outputs = model.outputs[0].shape[-1]
    if outputs == 1 and num_classes == 2:
        raise UserError("the model has one output unit (a sigmoid binary classifier) but ar2-tf needs one score per "
                        "class, as CAMs are per class: convert it to the two-class softmax model with the same "
                        "probabilities, ar2_tf.models.two_class.as_two_class_softmax (docs/guide/your-model.md), and "
                        "pass that.")
    if outputs != num_classes:
        counted = (" (the data's classes are its class folders or names; an .npz file without class_names "
                   "counts them up to its largest label: add class_names, one name per class)"
                   ) if outputs > num_classes else ""
        raise UserError(f"the model predicts {outputs} classes but the dataset has {num_classes}; "
                        f"pass a model trained on this dataset{counted}.")
    expected = tuple(model.inputs[0].shape[1:])
    if None not in expected[:2] and expected[0] != expected[1]:  # `image_size`, crops and corruptions are square
        raise UserError(f"the model takes {expected[0]}x{expected[1]} images, not square ones; ar2-tf feeds square "
                        f"images (`image_size` N): rebuild the model on keras.Input(({expected[0]}, {expected[0]}, "
                        f"3)) or keras.Input((None, None, 3)) (a globally pooled head keeps its weights) and pass that.")
    if image_shape is not None and None not in expected[:2] and tuple(image_shape) != expected[:2]:
        raise UserError(f"the model takes {expected[0]}x{expected[1]} images but the data is "
                        f"{image_shape[0]}x{image_shape[1]}; pass `image_size` {expected[0]} to resize the data.")
