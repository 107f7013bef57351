"""Copies of a Keras model already in memory: AR2's frozen reference θ_ref, the evaluation's BatchNorm-folded
copy and the mixed-precision training copy.

`keras.models.clone_model` re-creates every layer from its config. A `Lambda` layer's config holds its Python
function as bytecode, which Keras 3 refuses to deserialize unless safe mode is off; a model loaded with
`unsafe_model_loading` (or built in Python) therefore loaded, but could not be copied, and the run failed
after its first evaluation. The copy takes no new trust decision: the bytecode is that of the function the
model in memory already runs, taken from it a moment before. So `clone_layer` re-creates a Lambda with safe
mode off for that one layer, and nothing else changes: files are still loaded in safe mode unless the user
opts out (`ar2_tf.models.loading.load_model_file`).
"""

import keras
from keras.src.models.functional import Functional  # the graph models `clone_model` rebuilds layer by layer


def is_graph_model(layer) -> bool:
    """Whether `layer` is a built functional or sequential model: a graph of layers that can be cloned or
    walked layer by layer (a subclassed model cannot)."""
    return isinstance(layer, (Functional, keras.Sequential)) and layer.built


def clone_layer(layer, config=None):
    """A new layer like `layer`, from `config` (default: the layer's own)."""
    config = layer.get_config() if config is None else config
    if type(layer) is keras.layers.Lambda:  # its own function, serialized just now (module docstring)
        return keras.layers.Lambda.from_config(config, safe_mode=False)
    return layer.__class__.from_config(config)


def clone(model, clone_function=clone_layer):
    """A copy of functional or sequential `model` with new layers (models nested in it too, each layer made by
    `clone_function`) and no weights copied: a caller whose `clone_function` keeps the weights' layout sets them."""
    return keras.models.clone_model(model, clone_function=clone_function, recursive=True)


def copy_model(model):
    """A copy of `model` with new layers and its current weights."""
    copy = clone(model)
    copy.set_weights(model.get_weights())
    return copy
