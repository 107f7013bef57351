"""Where a classifier's attention is read: its last feature map and the head that turns it into class scores.

Any Keras CNN classifier is split at its last convolutional feature map f
[B, H, W, K]: the *backbone* (input -> f, what refinement trains) and the
*head* (f -> class scores, frozen during refinement). `find_head` walks back
from the model's output through single-input layers:

1. trailing `Activation`/`Softmax` layers are dropped: the class scores are the
   logits before them;
2. `Flatten`/`Reshape` layers right before them are kept (they reshape logits);
3. the *class layer* is the `Dense` (any activation: its pre-activation output is
   used) or linear `Conv2D` (MobileNet's 1x1 classifier) that produces the logits;
4. the walk goes on to the nearest global pooling (`GlobalAveragePooling2D`,
   `GlobalMaxPooling2D`, or an `AveragePooling2D` whose window covers the map);
   f is its input. Without one (VGG: `Flatten` -> fully connected layers) f is
   the input of the `Flatten` nearest to the class layer.

The head is *linear* when it is global average pooling followed only by linear
layers (`Dropout`, `Flatten`, `Reshape`, linear `Dense`, linear 1x1 `Conv2D` on
a 1x1 map, `Activation("linear")`): then the logits are an affine function of
the pooled features and exact CAMs (paper Eq. 1) exist for it
(`ar2_tf.method.attention`). Otherwise (MobileNetV3's hard-swish layer,
ConvNeXt's LayerNorm, VGG's ReLU stack) attention is Grad-CAM.

`feature_layer` NAME and `dense_layer` NAME override steps 4 and 3.

Frozen layers (`trainable = False`, most often a transfer-learning base) are the
user's explicit choice, and every method respects it: it trains only the trainable
weights, and a frozen layer's weights, BatchNorm moving statistics included, end
the run exactly as they began (Keras runs a frozen BatchNormalization in inference
mode even under `training=True`). AR2's refinement trains the trainable weights
before f, its fine-tuning and `method` finetune all trainable weights. A run with
frozen layers says so in one note at its start (`frozen_layers_note`); a run that
would train nothing is refused (`check_trainable`): every weight frozen, or, for
AR2, every weight before f (a base saved with `trainable = False`), where
refinement would silently train nothing at all.

A model is also refused when there is nothing before its head to repair: f is the
input image itself (a model without convolutional layers).
"""

import dataclasses

import keras

from ar2_tf.errors import UserError

_TRAILING_ACTIVATIONS = (keras.layers.Activation, keras.layers.Softmax)
_LOGIT_RESHAPES = (keras.layers.Flatten, keras.layers.Reshape)
_IDENTITY_LAYERS = (keras.layers.Dropout, keras.layers.Flatten, keras.layers.Reshape, keras.layers.Identity)
_OVERRIDE_HINT = ("Name the last feature map with `feature_layer` NAME and the class layer (Dense or 1x1 Conv2D) "
                  "with `dense_layer` NAME.")


@dataclasses.dataclass(frozen=True)
class Head:
    """The split of a classifier at its last feature map.

    Attributes:
        feature_layer: name of the layer whose output is the feature map f [B, H, W, K].
        layers: names of the head's layers after f, in call order, ending with the class
            layer and the reshapes of its logits.
        class_layer: name of the layer whose pre-activation output holds the class scores.
        linear: everything after global average pooling is linear, so exact CAMs exist.
    """

    feature_layer: str
    layers: tuple
    class_layer: str
    linear: bool


def find_head(model, feature_layer=None, dense_layer=None) -> Head:
    """Finds the head of `model` (see the module docstring); UserError naming what it found otherwise."""
    chain = _chain_to_output(model)  # [(layer, its input tensor)], output first
    position = _class_layer_position(chain, dense_layer)
    feature_position = _feature_position(model, chain, position, feature_layer)
    producer = _producer(chain[feature_position - 1][1])
    if isinstance(producer, keras.layers.InputLayer):
        raise UserError(f"the last feature map found is the model's input image ({producer.name!r}): no layer comes "
                        "before the head, so there is no convolutional backbone to repair (AR2 repairs CNN "
                        "classifiers); if the model has one, name its last feature map with `feature_layer` NAME.")
    _check_feature_map(producer, chain[feature_position - 1][1])
    class_layer = chain[position][0]
    # The head runs from f to the logits: activations after the class layer are not part of it.
    kept = [layer for index, (layer, _) in reversed(list(enumerate(chain[:feature_position])))
            if not (index < position and isinstance(layer, _TRAILING_ACTIVATIONS))]
    return Head(feature_layer=producer.name, layers=tuple(layer.name for layer in kept),
                class_layer=class_layer.name, linear=_is_linear(kept, class_layer))


def build_backbone(model, head: Head):
    """Returns the sub-model input -> feature map; it shares (and trains) `model`'s weights."""
    inputs = model.inputs[0] if len(model.inputs) == 1 else model.inputs
    # f is on the output's single-input path by construction (`find_head`); read it there, as a nested
    # feature model's own `.output` belongs to its inner graph.
    features = next(tensor for _, tensor in _chain_to_output(model) if _producer(tensor).name == head.feature_layer)
    return keras.Model(inputs, features, name=f"{model.name}_backbone")


def backbone_variables(classifier, head: Head) -> list:
    """`classifier`'s trainable variables outside the head: what refinement trains."""
    in_head = {variable.path for name in head.layers for variable in classifier.get_layer(name).trainable_variables}
    return [variable for variable in classifier.trainable_variables if variable.path not in in_head]


def check_trainable(classifier, head: Head, refines: bool) -> None:
    """UserError when training would change nothing: no weight of `classifier` is trainable, or, for a
    method that `refines`, none before its feature map (a base saved with `trainable = False`)."""
    if not classifier.trainable_variables:
        raise UserError("every layer of the model is frozen (trainable=False), so training would change nothing; "
                        "save it with `model.trainable = True` first.")
    if refines and not backbone_variables(classifier, head):
        raise UserError(f"every layer up to the feature map {head.feature_layer!r} is frozen (trainable=False), so "
                        "AR2's refinement, which trains only those layers, would change nothing; save the model with "
                        "them trainable (e.g. `base_model.trainable = True`), or fine-tune the head alone with "
                        "`method` finetune.")


def frozen_layers_note(classifier, head: Head, refines: bool):
    """One line on what a run leaves frozen and what it trains, or None when no layer of `classifier` is frozen.

    Layers are counted among those with weights, nested models' layers one by one; a layer is frozen when it or
    a model around it has `trainable = False`. `refines`: the method runs AR2's refinement.
    """
    layers = _weighted_layers(classifier)
    frozen = [layer for layer, is_frozen in layers if is_frozen]
    if not frozen:
        return None
    trained = _layers_owning(layers, classifier.trainable_variables)
    one = len(frozen) == 1
    batchnorm = any(isinstance(layer, keras.layers.BatchNormalization) for layer in frozen)
    kept = ("is frozen (trainable=False) and stays as it is" if one
            else "are frozen (trainable=False) and stay as they are")
    kept += ", BatchNorm moving statistics included" if batchnorm else ""
    if refines:
        before = _layers_owning(layers, backbone_variables(classifier, head))
        trains = (f"AR2's refinement trains the {_count(before, 'trainable layer')} before the feature map "
                  f"{head.feature_layer!r}, its fine-tuning the {_count(trained, 'trainable layer')} in all")
    else:
        trains = f"fine-tuning trains the {_count(trained, 'trainable layer')}"
    roots = [repr(layer.name) for layer in _frozen_roots(classifier)]
    named = ", ".join(roots[:3]) + (f" and {len(roots) - 3} more" if len(roots) > 3 else "")
    return (f"note: {len(frozen)} of {_count(layers, 'layer')} with weights {kept}; {trains}; to repair "
            f"{'it' if one else 'them'} too, set `trainable = True` on {named} and save the model again.")


def describe(head: Head) -> str:
    return f"{head.feature_layer} -> {' -> '.join(head.layers)}"


# --- Frozen layers -----------------------------------------------------------------------------------------------

def _weighted_layers(model, frozen=False):
    """[(layer, frozen)] for every layer with weights inside `model`, nested models walked into, each once."""
    found, seen = [], set()
    for layer in model.layers:
        is_frozen = frozen or not layer.trainable
        if isinstance(layer, keras.Model):
            inner = _weighted_layers(layer, is_frozen)
        else:
            inner = [(layer, is_frozen)] if layer.weights else []
        for entry in inner:
            if id(entry[0]) not in seen:
                seen.add(id(entry[0]))
                found.append(entry)
    return found


def _layers_owning(layers, variables):
    """The layers of `layers` that own one of `variables`."""
    ids = {id(variable) for variable in variables}
    return [layer for layer, _ in layers if any(id(variable) in ids for variable in layer.weights)]


def _frozen_roots(model):
    """The outermost frozen layers and models that hold weights: where `trainable = True` would free them."""
    roots = []
    for layer in model.layers:
        if not layer.weights:
            continue
        if not layer.trainable:
            roots.append(layer)
        elif isinstance(layer, keras.Model):
            roots.extend(_frozen_roots(layer))
    return roots


def _count(items, noun):
    return f"{len(items)} {noun}{'' if len(items) == 1 else 's'}"


# --- The walk ----------------------------------------------------------------------------------------------------

def _producer(tensor):
    return tensor._keras_history.operation


def _chain_to_output(model):
    """(layer, its input tensor) pairs from the output back through single-input layers, output first.

    Inputs are read from each call's node, not `layer.input`: a nested model's `.input` is its own
    Input, not the tensor it was called on in `model`.
    """
    if len(model.outputs) != 1:
        raise UserError(f"the model has {len(model.outputs)} outputs; repair needs one class-score output.")
    chain, tensor = [], model.outputs[0]
    while True:
        history = tensor._keras_history
        layer = history.operation
        if isinstance(layer, keras.layers.InputLayer):
            return chain
        inputs = layer._inbound_nodes[history.node_index].input_tensors
        if len(inputs) != 1:
            return chain
        chain.append((layer, inputs[0]))
        tensor = inputs[0]


def _class_layer_position(chain, dense_layer):
    if dense_layer is not None:
        for position, (layer, _) in enumerate(chain):
            if layer.name == dense_layer:
                if not _is_class_layer(layer):
                    raise UserError(f"`dense_layer` {dense_layer!r} is a {type(layer).__name__}, not a Dense or "
                                    "linear Conv2D layer.")
                after = [later for later, _ in chain[:position] if not isinstance(later, _TRAILING_ACTIVATIONS
                                                                                    + _LOGIT_RESHAPES)]
                if after:
                    raise UserError(f"`dense_layer` {dense_layer!r} is followed by {after[0].name!r} "
                                    f"({type(after[0]).__name__}): name the layer that produces the class scores.")
                return position
        raise UserError(f"`dense_layer` {dense_layer!r} is not on the path from the model's output back to its "
                        f"features (that path: {_describe_chain(chain)}).")
    position = 0
    while position < len(chain) and isinstance(chain[position][0], _TRAILING_ACTIVATIONS):
        position += 1
    while position < len(chain) and isinstance(chain[position][0], _LOGIT_RESHAPES):
        position += 1
    if position == len(chain) or not _is_class_layer(chain[position][0]):
        raise UserError("cannot find the class layer: the model must end in a Dense (or linear 1x1 Conv2D) "
                        f"layer, optionally followed by activations and reshapes; its head is "
                        f"{_describe_chain(chain)}. {_OVERRIDE_HINT}")
    return position


def _is_class_layer(layer):
    if isinstance(layer, keras.layers.Dense):
        return True
    return isinstance(layer, keras.layers.Conv2D) and _linear_activation(layer)


def _feature_position(model, chain, class_position, feature_layer):
    """Index into `chain` of the first head layer (the one whose input is f)."""
    if feature_layer is not None:
        try:
            model.get_layer(feature_layer)
        except ValueError:
            raise UserError(f"`feature_layer` {feature_layer!r}: the model has no such layer (its head: "
                            f"{_describe_chain(chain)}).") from None
        for position in range(class_position, len(chain)):
            if _producer(chain[position][1]).name == feature_layer:
                return position + 1
        raise UserError(f"`feature_layer` {feature_layer!r} is not on the single-input path before the class layer "
                        f"(that path: {_describe_chain(chain)}). {_OVERRIDE_HINT}")
    for position in range(class_position + 1, len(chain)):
        if _is_global_pool(chain[position][0]):
            return position + 1
    for position in range(class_position + 1, len(chain)):
        layer, tensor = chain[position]
        if isinstance(layer, keras.layers.Flatten) and len(tensor.shape) == 4:
            return position + 1
    raise UserError("cannot find the last feature map: no global pooling or Flatten of a feature map before the "
                    f"class layer; the head is {_describe_chain(chain[:class_position + 3])}. {_OVERRIDE_HINT}")


def _is_global_pool(layer):
    if isinstance(layer, (keras.layers.GlobalAveragePooling2D, keras.layers.GlobalMaxPooling2D)):
        return True
    return _is_full_average_pool(layer)


def _is_full_average_pool(layer):
    if not isinstance(layer, keras.layers.AveragePooling2D):
        return False
    return tuple(layer.output.shape[1:3]) == (1, 1) and tuple(layer.input.shape[1:3]) == tuple(layer.pool_size)


def _check_feature_map(producer, tensor):
    if len(tensor.shape) != 4:
        raise UserError(f"feature layer {producer.name!r} outputs shape {tuple(tensor.shape)}, not a [batch, H, W, "
                        f"channels] map. {_OVERRIDE_HINT}")


def _linear_activation(layer):
    return getattr(layer, "activation", None) in (None, keras.activations.linear)


def _is_linear(layers, class_layer):
    """Global average pooling, then only linear layers up to and including the class layer's pre-activation."""
    if not layers or not (isinstance(layers[0], keras.layers.GlobalAveragePooling2D)
                          or _is_full_average_pool(layers[0])):
        return False
    for layer in layers[1:]:
        if layer is class_layer or isinstance(layer, _IDENTITY_LAYERS):
            continue
        if isinstance(layer, keras.layers.Activation) and _linear_activation(layer):
            continue
        if isinstance(layer, keras.layers.Dense) and _linear_activation(layer):
            continue
        if _is_pointwise_conv(layer) and _linear_activation(layer):
            continue
        return False
    return True


def _is_pointwise_conv(layer):
    return (isinstance(layer, keras.layers.Conv2D) and tuple(layer.kernel_size) == (1, 1)
            and tuple(layer.input.shape[1:3]) == (1, 1) and getattr(layer, "groups", 1) == 1)


def _describe_chain(chain, count=6):
    names = [f"{type(layer).__name__}({layer.name})" for layer, _ in chain[:count]]
    return " <- ".join(names) if names else "(no layers)"
