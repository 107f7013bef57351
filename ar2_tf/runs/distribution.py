"""Choosing the tf.distribute strategy a run trains under, and what each worker may write.

- "default": one device.
- "mirrored": `MirroredStrategy`, one replica per local GPU (without GPUs, per logical
  CPU device); trains with Keras `fit`.
- "multiworker": `MultiWorkerMirroredStrategy` over the workers named in `TF_CONFIG`;
  trains with `ar2_tf.runs.distributed_loop` (Keras 3.15 `fit` fails under it,
  keras-team/keras#20585).
- "auto": multiworker if `TF_CONFIG` names several workers, mirrored if several
  GPUs are visible, else default.

Only the chief writes the run folder. Other workers write to a temporary
folder inside it (`.workertemp_<id>`, TensorFlow's usual pattern) that is
deleted when they finish.
"""

import json
import os
import shutil

import tensorflow as tf

from ar2_tf.choices import STRATEGIES
from ar2_tf.errors import UserError, check_choice


def _workers_in_tf_config() -> int:
    try:
        cluster = json.loads(os.environ.get("TF_CONFIG", "{}")).get("cluster", {})
    except json.JSONDecodeError:
        return 0
    return len(cluster.get("worker", [])) + len(cluster.get("chief", []))


def get_strategy(name: str = "auto"):
    """The strategy called `name` (see the module docstring).

    Create it before any other TensorFlow op runs: a multi-worker strategy
    configures the runtime's collective ops, which is only possible at startup.
    """
    check_choice("strategy", name, STRATEGIES)
    if name == "auto":
        if _workers_in_tf_config() > 1:
            name = "multiworker"
        elif len(tf.config.list_logical_devices("GPU")) > 1:
            name = "mirrored"
        else:
            name = "default"
    if name == "multiworker":
        try:
            return tf.distribute.MultiWorkerMirroredStrategy()
        except RuntimeError as error:  # the runtime already started: collectives can no longer be set up
            raise UserError(f"could not start MultiWorkerMirroredStrategy ({error}); create it before any other "
                            "TensorFlow work in the process.") from None
    if name == "mirrored":
        # Without GPUs, mirror over the logical CPU devices (one unless the CPU was split, as in tests).
        devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
        return tf.distribute.MirroredStrategy([device.name for device in devices])
    return tf.distribute.get_strategy()


def is_multi_worker(strategy) -> bool:
    """True for a MultiWorkerMirroredStrategy (trained by the custom loop, even with one worker)."""
    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)


def task(strategy):
    """(task type, task index) of this process; (None, None) outside a cluster."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None:
        return None, None
    return resolver.task_type, resolver.task_id


def is_chief(strategy) -> bool:
    """The chief writes checkpoints, logs and results: the "chief" task, else worker 0."""
    task_type, task_id = task(strategy)
    if task_type in (None, "chief"):
        return True
    if task_type == "worker":
        has_chief = "chief" in (strategy.cluster_resolver.cluster_spec().as_dict() or {})
        return not has_chief and task_id == 0
    return False


def worker_dir(out: str, strategy) -> str:
    """The folder this process writes to: `out` for the chief, else a fresh `out/.workertemp_<id>`."""
    if is_chief(strategy):
        return out
    task_type, task_id = task(strategy)
    path = os.path.join(out, f".workertemp_{task_type}_{task_id}")
    shutil.rmtree(path, ignore_errors=True)
    os.makedirs(path)
    return path


def check_global_batch(batch_size: int, strategy):
    """Every replica gets batch_size / replicas images, so the batch must split evenly."""
    replicas = strategy.num_replicas_in_sync
    if batch_size % replicas:
        raise UserError(f"`batch_size` {batch_size} does not split evenly over {replicas} replicas; use a multiple "
                        f"of {replicas} (it is the global batch, summed over all replicas).")


def barrier(strategy):
    """Blocks until every worker reaches the same point (a one-number all-reduce)."""
    if strategy.num_replicas_in_sync > 1 and is_multi_worker(strategy):
        one = tf.function(lambda: tf.distribute.get_replica_context().all_reduce("SUM", tf.constant(1.0)))
        strategy.run(one)


def broadcast_from_chief(strategy, variables):
    """Sets every replica's copy of `variables` to the chief's values.

    Variables created under a multi-worker scope start equal, but weights that
    each worker assigned afterwards (a loaded or restored model) may not: this
    makes them so. One all-reduce in which only the chief's first replica
    contributes; values travel as float64 (exact for float32, and integers below 2**53).
    """
    variables = list({id(v): v for v in variables}.values())
    if not variables or strategy.num_replicas_in_sync == 1:
        return
    chief = is_chief(strategy)

    def chief_values():
        context = tf.distribute.get_replica_context()
        own = tf.logical_and(chief, tf.equal(context.replica_id_in_sync_group, 0))
        values = [_wire(v) for v in variables]
        return context.all_reduce("SUM", [value * tf.cast(own, value.dtype) for value in values])

    totals = strategy.experimental_local_results(strategy.run(tf.function(chief_values)))[0]
    for variable, total in zip(variables, totals):
        variable.assign(tf.cast(total, variable.dtype))


def _wire(variable):
    # One dtype for the whole batched all-reduce; float64 holds float32 and int64 (< 2**53) exactly.
    return tf.cast(tf.convert_to_tensor(variable), tf.float64)
