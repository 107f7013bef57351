"""Checks an exported SavedModel against the Keras model, and describes its signatures.

`verify_export` reloads the SavedModel with `tf.saved_model.load` (as a server
would, from the files alone) and runs every signature on real images. The
reference is the Keras model applied to the images exactly as the training
pipeline prepares them (`ar2_tf.data.sources.center_crop` for ImageNet-style runs,
the unchanged image when it already has the input size, otherwise the resize
that a test keeps equal to the pipeline's). Images are also sent at twice
their size, so the in-graph resize is exercised. Any disagreement raises
`ExportVerificationError` and the version is never installed.

`signature_summary` prints what `saved_model_cli show --all` shows for the
signatures: inputs and outputs with dtype, shape and tensor name.
"""

import os

import numpy as np
import tensorflow as tf
from tensorflow.core.framework import types_pb2
from tensorflow.core.protobuf import saved_model_pb2

from ar2_tf.data.preprocessing import get_preprocessor
from ar2_tf.data.sources import center_crop, resize_uint8

TOLERANCE = 1e-5  # largest accepted |probability difference|: graph and eager kernels may round differently


class ExportVerificationError(AssertionError):
    """The reloaded SavedModel does not reproduce the Keras model's predictions."""


def training_inputs(images, *, preprocessing, resize, input_shape):
    """uint8 images [B, H, W, 3] -> model inputs, the way the training pipeline prepares them."""
    height, width = input_shape[:2]
    images = tf.convert_to_tensor(images, tf.uint8)
    if resize == "center_crop":
        images = tf.stack([center_crop(image, height) for image in images])
    elif tuple(images.shape[1:3]) != (height, width):
        images = resize_uint8(images, (height, width))
    return get_preprocessor(preprocessing)(images)


def verify_export(path, run, images, tolerance=TOLERANCE, max_image_size=None) -> dict:
    """Reloads the SavedModel at `path` and checks every signature against `run.model` on `images`.

    Args:
        path: the SavedModel folder.
        run: the exported `export.finished_run.Run` (its Keras model is the reference).
        images: uint8 [B, H, W, 3] real images.
        tolerance: largest accepted absolute difference of probabilities.
        max_image_size: the export's size bound; images are also sent at 2x size when it allows.

    Returns:
        a summary: images checked, the largest probability difference, signatures run.

    Raises:
        ExportVerificationError: a signature disagrees with the Keras model.
    """
    loaded = tf.saved_model.load(path)
    images = np.asarray(images, np.uint8)
    names = np.array(run.class_names, dtype=object)
    expected, model_inputs = _reference(run, images)
    checks = [("serving_default", "serving_default", {"images": images}, expected),
              ("predict_preprocessed", "predict_preprocessed", {"inputs": model_inputs}, expected)]
    if max_image_size is None or 2 * max(images.shape[1:3]) <= max_image_size:
        enlarged = images.repeat(2, axis=1).repeat(2, axis=2)  # exercises the in-graph resize
        checks.append(("serving_default at 2x size", "serving_default", {"images": enlarged},
                       _reference(run, enlarged)[0]))
    if "cam" in loaded.signatures:
        checks.append(("cam", "cam", {"images": images}, expected))
    worst = 0.0
    for label, signature, inputs, reference in checks:
        got = _call(loaded, signature, **inputs)
        worst = max(worst, _compare(label, got, reference, names, tolerance))
        if signature == "cam" and (got["cam"].shape != images.shape[:3] or not np.all(np.isfinite(got["cam"]))):
            raise ExportVerificationError(f"cam: expected finite maps of shape {images.shape[:3]}, "
                                          f"got shape {got['cam'].shape}")
    return {"images": len(images), "max_probability_difference": worst, "checked": [check[0] for check in checks]}


def _reference(run, images):
    model_inputs = training_inputs(images, preprocessing=run.preprocessing, resize=run.resize,
                                   input_shape=run.input_shape)
    # Legacy .h5 models declare their input as a one-element list; call them with one.
    probabilities = run.model([model_inputs] if isinstance(run.model.input, list) else model_inputs, training=False)
    return np.asarray(probabilities, np.float32), model_inputs


def _call(loaded, signature, **inputs):
    outputs = loaded.signatures[signature](**{k: tf.constant(v) for k, v in inputs.items()})
    return {key: value.numpy() for key, value in outputs.items()}


def _compare(label, got, expected, names, tolerance) -> float:
    probabilities = got["probabilities"]
    if probabilities.shape != expected.shape:
        raise ExportVerificationError(f"{label}: probabilities have shape {probabilities.shape}, "
                                      f"the Keras model's {expected.shape}")
    difference = float(np.max(np.abs(probabilities - expected))) if expected.size else 0.0
    if difference > tolerance:
        raise ExportVerificationError(f"{label}: probabilities differ from the Keras model's by up to "
                                      f"{difference:.3g} (tolerance {tolerance:g})")
    top = np.sort(expected, axis=-1)
    decided = (top[:, -1] - top[:, -2] > 2 * tolerance) if expected.shape[-1] > 1 else np.ones(len(top), bool)
    mismatch = (got["classes"] != expected.argmax(-1)) & decided
    if mismatch.any():
        raise ExportVerificationError(f"{label}: top-1 classes {got['classes'].tolist()} differ from the Keras "
                                      f"model's {expected.argmax(-1).tolist()}")
    if not np.array_equal(got["top_k_classes"][:, 0], got["classes"]):
        raise ExportVerificationError(f"{label}: top_k_classes[:, 0] is not the top-1 class")
    returned = np.array([name.decode("utf-8") for name in got["class_names"]], dtype=object)
    if not np.array_equal(returned, names[got["classes"]]):
        raise ExportVerificationError(f"{label}: class_names {returned.tolist()} do not match the classes "
                                      f"{got['classes'].tolist()}")
    return difference


def signature_summary(path, tag="serve") -> str:
    """The SignatureDefs of the SavedModel at `path`, formatted as `saved_model_cli show --all` does."""
    saved_model = saved_model_pb2.SavedModel()
    with open(os.path.join(path, "saved_model.pb"), "rb") as file:
        saved_model.ParseFromString(file.read())
    meta_graph = next(graph for graph in saved_model.meta_graphs if tag in graph.meta_info_def.tags)
    lines = [f"MetaGraphDef with tag-set: '{tag}' contains the following SignatureDefs:"]
    for key in sorted(meta_graph.signature_def):
        signature = meta_graph.signature_def[key]
        lines += ["", f"signature_def['{key}']:"]
        for kind, tensors in (("input", signature.inputs), ("output", signature.outputs)):
            lines.append(f"  The given SavedModel SignatureDef contains the following {kind}(s):")
            for name in sorted(tensors):
                info = tensors[name]
                lines += [f"    {kind}s['{name}'] tensor_info:",
                          f"        dtype: {types_pb2.DataType.Name(info.dtype)}",
                          f"        shape: {_shape(info.tensor_shape)}", f"        name: {info.name}"]
        lines.append(f"  Method name is: {signature.method_name}")
    return "\n".join(lines)


def _shape(shape) -> str:
    if shape.unknown_rank:
        return "unknown_rank"
    dims = [str(dim.size) for dim in shape.dim]
    return f"({dims[0]})" if len(dims) == 1 else f"({', '.join(dims)})"
