"""Choosing the tf.distribute strategy a run trains under."""

import json
import os

import tensorflow as tf

from ar2_tf.errors import check_choice

STRATEGIES = ("auto", "mirrored", "multiworker", "default")


def _workers_in_tf_config() -> int:
    try:
        cluster = json.loads(os.environ.get("TF_CONFIG", "{}")).get("cluster", {})
    except json.JSONDecodeError:
        return 0
    return len(cluster.get("worker", [])) + len(cluster.get("chief", []))


def get_strategy(name: str = "auto"):
    """"auto": MultiWorkerMirroredStrategy if TF_CONFIG names several workers, MirroredStrategy
    if several GPUs are visible, else the default (single-device) strategy."""
    check_choice("strategy", name, STRATEGIES)
    if name == "auto":
        if _workers_in_tf_config() > 1:
            name = "multiworker"
        elif len(tf.config.list_logical_devices("GPU")) > 1:
            name = "mirrored"
        else:
            name = "default"
    if name == "multiworker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()
