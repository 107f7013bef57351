"""Loading a pretrained classifier file, with the custom objects the user names.

What a file holds is checked from the architecture it records (`config.json` of a `.keras` archive, the
`model_config` attribute of an `.h5` file) before Keras deserialises it: Python code (Lambda layers) and
custom classes nobody registered are refused with the fix, instead of reading the wording of Keras' own
errors.
"""

import importlib
import importlib.util
import json
import os
import re
import sys
import zipfile

import keras

from ar2_tf.errors import UserError, first_line
from ar2_tf.models.architectures import ARCHITECTURES
from ar2_tf.models.checks import check_classifier

KERAS_SUFFIXES = (".keras", ".h5", ".hdf5")


def load_model_file(path: str, unsafe_model_loading: bool = False):
    """Loads a pretrained classifier from a `.keras` or legacy `.h5` file.

    `.keras` files load with Keras' `safe_mode` (no deserialised Python lambdas)
    unless `unsafe_model_loading` is set. SavedModel folders hold a graph, not Keras layers, so
    the feature map Eq. 1 needs cannot be found in them: they are refused with
    the fix (re-save as `.keras`).
    """
    _check_path(path)
    config = recorded_config(path)
    if config is not None:
        _check_recorded_objects(path, config, unsafe_model_loading)
    try:
        model = keras.saving.load_model(path, compile=False, safe_mode=not unsafe_model_loading)
    except Exception as error:  # Keras wraps deserialisation errors in several types
        raise UserError(f"could not load model file {path!r} ({type(error).__name__}: {first_line(error)}); "
                        "is it a complete Keras model file?") from None
    check_classifier(model, path)
    return model


def _check_path(path):
    """Refuses what is no model file: a missing path, a SavedModel or other folder, an unknown suffix."""
    if not os.path.exists(path):
        raise UserError(f"model file {path!r} does not exist; pass `model` as the path of a .keras or .h5 "
                        f"file, or an architecture name ({', '.join(ARCHITECTURES)}).")
    if os.path.isdir(path):
        if os.path.exists(os.path.join(path, "saved_model.pb")):
            raise UserError(
                f"{path!r} is a TensorFlow SavedModel: it holds a traced graph without Keras layers, so AR2 "
                "cannot find its feature map and class weights. Load the original Keras model and save it with "
                "model.save('model.keras'), then pass that file."
            )
        raise UserError(f"model path {path!r} is a folder, not a .keras or .h5 file.")
    if not path.endswith(KERAS_SUFFIXES):
        raise UserError(f"model file {path!r}: unknown format; expected a .keras or .h5 file.")


def recorded_config(path):
    """The architecture a model file records, as a dict; None where it records none readable (Keras then
    says what is wrong with the file)."""
    try:
        if path.endswith(".keras"):
            with zipfile.ZipFile(path) as archive:
                return json.loads(archive.read("config.json"))
        import h5py

        with h5py.File(path, "r") as file:
            text = file.attrs.get("model_config")
        return json.loads(text) if text is not None else None
    except (OSError, KeyError, ValueError, zipfile.BadZipFile):
        return None


def recorded_objects(config):
    """Every serialised object of a recorded architecture, nested ones included: the dicts with a class name."""
    if isinstance(config, dict):
        if "class_name" in config:
            yield config
        for value in config.values():
            yield from recorded_objects(value)
    elif isinstance(config, list):
        for value in config:
            yield from recorded_objects(value)


def holds_python_code(config) -> bool:
    """Whether the architecture holds a Python lambda's bytecode (a Lambda layer's function), which Keras'
    safe mode refuses to deserialise."""
    return any(entry["class_name"] == "__lambda__" for entry in recorded_objects(config))


def unregistered_objects(config) -> list:
    """The registered names ("package>Name") of the custom classes and functions the architecture uses that
    this process has not registered (`keras.saving.register_keras_serializable`)."""
    names = {entry.get("registered_name") or entry["class_name"] for entry in recorded_objects(config)}
    return sorted(name for name in names if isinstance(name, str) and ">" in name
                  and keras.saving.get_registered_object(name) is None)


def _check_recorded_objects(path, config, unsafe):
    if not unsafe and holds_python_code(config):
        raise UserError(f"model file {path!r} contains Python code (a Lambda layer) that Keras' safe mode refuses "
                        "to run. Only if you trust the file, pass `unsafe_model_loading`.")
    missing = unregistered_objects(config)
    if missing:
        raise UserError(f"model file {path!r} uses a custom class or function that is not registered "
                        f"({', '.join(missing)}). Custom objects load only once registered: decorate them with "
                        "@keras.saving.register_keras_serializable() and pass that Python file with "
                        "`custom_objects` (or import it before loading).")


def import_custom_objects(sources) -> None:
    """Imports each of `sources` (a `.py` file, or the name of a module Python can import), so that the custom
    layers and functions it registers with `@keras.saving.register_keras_serializable()` load with model files.

    This runs that code, like any import: it is what the user names in `custom_objects`, never
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
            raise UserError(f"`custom_objects` {source!r} could not be imported ({type(error).__name__}: "
                            f"{first_line(error)}); pass the .py file, or an importable module name, that defines "
                            "and registers the model's custom layers.") from None


def _import_file(path):
    if not os.path.isfile(path):
        raise UserError(f"`custom_objects` {path!r}: no such file; pass the .py file that defines and registers the "
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
