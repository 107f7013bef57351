"""Mixed precision and XLA for repair runs (meant for GPUs; both also run, slowly, on CPU).

- `mixed_precision` mixed_float16|mixed_bfloat16: θ is trained as a copy whose
  layers compute in float16/bfloat16 with float32 variables
  (`keras.mixed_precision`). The head (global pooling to logits) and everything
  after it stay float32, so logits and softmax are float32; CAMs (Eq. 1) and Eq. 2 are
  computed in float32 anyway (`ar2_tf.method.cam` casts the features). With float16,
  both optimizers (fine-tuning and refinement) are wrapped in a
  `LossScaleOptimizer`, whose dynamic loss scale `RepairModel` applies through
  `optimizer.scale_loss`; bfloat16 has float32's range and needs none.
- `jit_compile`: XLA-compile each phase's step. Left unset, Keras
  decides ("auto": on with a GPU, off on CPU, where XLA is slower).

The trained copy's weights are copied back into the float32 classifier, so the
saved model is an ordinary float32 model.
"""

import keras

from ar2_tf.choices import check_precision_policy
from ar2_tf.errors import UserError
from ar2_tf.models.cloning import clone, clone_layer


def float32_layers(classifier, head) -> set:
    """Names of the head's layers (`ar2_tf.method.head.Head`: global pooling to logits) and every layer
    after the first of them: they keep computing in float32."""
    names = [layer.name for layer in classifier.layers]
    first = head.layers[0]
    if first not in names:
        raise UserError(f"the model has no layer {first!r}.")
    return set(names[names.index(first):]) | set(head.layers)


def with_policy(classifier, policy=None, keep_float32=()):
    """A clone of `classifier` with the same weights, created under the current (strategy) scope.

    Args:
        classifier: a functional or sequential Keras classifier.
        policy: a `choices.PRECISION_POLICIES` name for every layer except `keep_float32`; None keeps
            each layer's own policy (a plain copy, e.g. for a multi-worker scope).
        keep_float32: names of layers that keep the float32 policy.
    """

    def with_dtype(layer):
        config = layer.get_config()
        if policy is not None:
            config["dtype"] = "float32" if layer.name in keep_float32 else policy
        return clone_layer(layer, config)

    copy = clone(classifier, with_dtype)
    copy.set_weights(classifier.get_weights())
    return copy


def configure_trainer(trainer, *, policy=None, jit_compile=None):
    """Re-compiles a compiled trainer (`RepairModel`, or any model compiled with an optimizer) for
    `policy` (loss scaling) and XLA.

    The optimizers (`optimizer`, and `refine_optimizer` where the trainer has one)
    are rebuilt from their configs (same hyperparameters, no state yet); with
    "mixed_float16" each is wrapped in a `LossScaleOptimizer`. `jit_compile`
    None leaves Keras' "auto" choice.
    """
    check_precision_policy(policy)
    if policy is None and jit_compile is None:
        return trainer

    def fresh(optimizer):
        optimizer = optimizer.__class__.from_config(optimizer.get_config())
        if policy == "mixed_float16":
            optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
        return optimizer

    optimizers = {"optimizer": fresh(trainer.optimizer)}
    if getattr(trainer, "refine_optimizer", None) is not None:
        optimizers["refine_optimizer"] = fresh(trainer.refine_optimizer)
    trainer.compile(**optimizers, jit_compile="auto" if jit_compile is None else bool(jit_compile))
    return trainer
