"""What a Python caller hands `ar2_tf.repair` in memory, written into the run folder by content.

A model and arrays passed in memory are written to `<out>/inputs/` under the hash of their content
(`model-<hash>.keras`, `data-<hash>.npz`), so the run names them like any files and a later call with the same
model and data resumes or reuses the run. `tidy` removes the files no recorded run names.
"""

import hashlib
import json
import os
import re

import numpy as np

from ar2_tf.errors import UserError

INPUTS = "inputs"  # inside the run folder: the model and arrays handed over in memory
_WRITTEN = re.compile(r"(model-[0-9a-f]{16}\.keras|data-[0-9a-f]{16}\.npz)")  # their names there


def tidy(out, made):
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

def model_path(inputs, model) -> str:
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

def write_arrays(inputs, pairs, what=None) -> str:
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
