"""AR2's schedule under MultiWorkerMirroredStrategy: a small custom loop instead of Keras `fit`.

Keras 3.15 `fit` fails under `MultiWorkerMirroredStrategy` (keras-team/keras#20585:
it reduces the first data batch and the step logs through code paths that do
not accept multi-worker per-replica values). `fit` here replaces only the loop:

- each replica runs the trainer's `train_step` of the current phase through
  `strategy.run`, one compiled function per phase, made and selected by the
  trainer's own `phase_functions` (`ar2_tf.method.phased_trainer`), as under `fit`;
- the losses are already divided by `num_replicas_in_sync` in `RepairModel`, and
  the optimizers sum gradients over all replicas, so a step equals one step on
  the global batch (for models whose layers do not mix images of a batch:
  BatchNormalization's statistics stay per replica, as under `fit`);
- step logs are the replicas' running metric means, averaged over all replicas;
- the same Keras callbacks drive it (schedule, TensorBoard scalars, CAM images,
  NaN guard, checkpoints), with the same `logs`.

Every worker builds the same global batches (same seed) and keeps its own
slices of them (`replica_slices`), so the run sees exactly the batches a
single-worker run sees.
"""

import functools

import keras
import tensorflow as tf

from ar2_tf.runs import distribution


def replica_slices(dataset, global_batch_size, context):
    """This worker's per-replica batches: from each global batch, the slices of its replicas.

    Args:
        dataset: batches of `global_batch_size` (any nested structure of tensors).
        global_batch_size: images per global batch; a multiple of the replica count.
        context: the `tf.distribute.InputContext` of this input pipeline.

    Replica r of the whole cluster gets rows [r·b, (r+1)·b) of every global
    batch, b = global_batch_size / replicas; the local replicas take consecutive
    elements of the returned dataset in replica order.
    """
    replicas = context.num_replicas_in_sync
    local = replicas // context.num_input_pipelines
    per_replica = global_batch_size // replicas
    first = context.input_pipeline_id * local

    def split(*batch):
        def own(tensor):
            pieces = tf.reshape(tensor, tf.concat([[replicas, per_replica], tf.shape(tensor)[1:]], axis=0))
            return pieces[first:first + local]

        return tf.nest.map_structure(own, batch if len(batch) > 1 else batch[0])

    return dataset.map(split).unbatch()


def _state(model):
    """Everything a step reads that must be equal on all replicas: θ, θ_ref and both optimizers."""
    variables = list(model.classifier.variables)
    if getattr(model, "reference", None) is not None:
        variables += list(model.reference.variables)
    for optimizer in (model.optimizer, getattr(model, "refine_optimizer", None)):
        if optimizer is not None:
            variables += list(optimizer.variables)
    return variables


def _step_function(model, strategy, phase):
    """One compiled distributed step of `phase`: a batch per replica, logs averaged over replicas."""

    def replica_step(data):
        selected = model.phase
        model.set_phase(phase)  # train_step reads the phase while it is traced
        try:
            logs = model.train_step(data)
        finally:
            model.set_phase(selected)
        return tf.distribute.get_replica_context().all_reduce("MEAN", logs)

    if getattr(model, "jit_compile", False):
        replica_step = tf.function(replica_step, jit_compile=True)

    @tf.function
    def step(iterator):
        logs = strategy.run(replica_step, args=(next(iterator),))
        return strategy.experimental_local_results(logs)[0]  # equal on every replica after the all-reduce

    return step


def fit(model, dataset, *, strategy, epochs, steps_per_epoch, global_batch_size, initial_epoch=0, callbacks=(),
        verbose=1):
    """Runs `epochs` Keras-style epochs of `steps_per_epoch` batches each, like `model.fit`.

    Args:
        model: a compiled `RepairModel` created under `strategy.scope()`.
        dataset: endless global batches `((clean, corrupted), labels)` (see `ar2_tf.data.pipelines`).
        strategy: the distribution strategy (any; the point is MultiWorkerMirroredStrategy).
        epochs, steps_per_epoch, initial_epoch: as for `fit` (see `Schedule.fit_arguments`).
        global_batch_size: the batch size of `dataset`.
        callbacks: Keras callbacks; `ScheduleCallback` among them switches the phase.
        verbose: Keras progress-bar verbosity.

    Returns:
        The `keras.callbacks.History` of the run.
    """
    distribution.check_global_batch(global_batch_size, strategy)
    distribution.broadcast_from_chief(strategy, _state(model))
    batches = strategy.distribute_datasets_from_function(
        functools.partial(replica_slices, dataset, global_batch_size))
    iterator = iter(batches)
    steps = model.phase_functions(("distributed", id(strategy)), lambda: _step_function(model, strategy, model.phase))
    history = keras.callbacks.History()
    callback_list = keras.callbacks.CallbackList([*callbacks, history], add_progbar=verbose != 0, model=model,
                                                 verbose=verbose, epochs=epochs, steps=steps_per_epoch)
    model.stop_training = False
    logs = {}
    callback_list.on_train_begin()
    for epoch in range(initial_epoch, epochs):
        for metric in model.metrics:
            metric.reset_state()
        callback_list.on_epoch_begin(epoch)
        for batch in range(steps_per_epoch):
            callback_list.on_train_batch_begin(batch)
            logs = steps[model.phase](iterator)
            callback_list.on_train_batch_end(batch, logs)
            if model.stop_training:
                break
        logs = {name: float(value) for name, value in logs.items()}
        callback_list.on_epoch_end(epoch, logs)
        if model.stop_training:
            break
    callback_list.on_train_end(logs)
    return history
