"""Distributed repair: two CPU workers (MultiWorkerMirroredStrategy, custom loop) and two CPU
replicas (MirroredStrategy, Keras fit) end with the weights and metrics of a one-device run on
the same global batches.

The models here have no BatchNormalization: its batch statistics are per replica, so a model
with it legitimately differs from a one-device run.
"""

import glob
import json
import os
import socket
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf

from ar2_tf.runs import distributed_loop, distribution

RUN = ["--dataset", "demo", "--train-size", "32", "--test-size", "12", "--batch-size", "8", "--preset", "tiny",
       "-T", "2", "--corruption", "gaussian_noise", "--refine-lr", "0.05", "--finetune-lr", "0.05", "--verbose", "0"]
from tests.helpers import ROOT, scalars


def bn_free_classifier(path, num_classes=6, size=32):
    """A small CAM-able classifier without BatchNormalization, saved to `path`."""
    keras.utils.set_random_seed(1)
    inputs = keras.Input((size, size, 3))
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="conv1")(inputs)
    x = keras.layers.Conv2D(12, 3, strides=2, padding="same", activation="relu", name="features")(x)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    outputs = keras.layers.Dense(num_classes, activation="softmax", name="classes")(x)
    keras.Model(inputs, outputs).save(path)
    return path


def free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports




def weights(run_dir):
    model = keras.saving.load_model(os.path.join(run_dir, "model.keras"), compile=False)
    return model.get_weights()


def assert_same_run(run, reference, initial):
    for a, b, start in zip(weights(run), weights(reference), initial):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    moved = max(float(np.max(np.abs(a - s))) for a, s in zip(weights(reference), initial))
    assert moved > 1e-3  # the comparison is not vacuous: training changed the weights
    ours, theirs = scalars(run), scalars(reference)
    assert set(ours) == set(theirs) and "iteration/align_loss" in ours
    for tag in ours:
        np.testing.assert_allclose(ours[tag], theirs[tag], rtol=1e-4, atol=1e-5)


def subprocess_env(**extra):
    env = {key: value for key, value in os.environ.items() if key != "TF_CONFIG"}
    return {**env, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": ROOT, **extra}


@pytest.fixture(scope="module")
def single_device_run(tmp_path_factory):
    """The reference: the same run on one device (in a subprocess, like the distributed ones)."""
    folder = tmp_path_factory.mktemp("single")
    model = bn_free_classifier(str(folder / "model.keras"))
    out = str(folder / "run")
    subprocess.run([sys.executable, "-m", "ar2_tf.train", *RUN, "--model", model, "--out", out,
                    "--strategy", "default"], env=subprocess_env(), cwd=ROOT, check=True, timeout=300)
    return model, out


@pytest.mark.slow
def test_two_workers_match_one_device(single_device_run, tmp_path):
    model, reference = single_device_run
    out = str(tmp_path / "run")
    ports = free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{port}" for port in ports]}
    workers = []
    for index in range(2):
        config = json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})
        workers.append(subprocess.Popen(
            [sys.executable, "-m", "ar2_tf.train", *RUN, "--model", model, "--out", out, "--strategy", "auto"],
            env=subprocess_env(TF_CONFIG=config), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True))
    try:
        outputs = [worker.communicate(timeout=400)[0] for worker in workers]
    finally:
        for worker in workers:
            worker.kill()
    for worker, output in zip(workers, outputs):
        assert worker.returncode == 0, output[-3000:]
    assert "ar2 repair for gaussian_noise" in outputs[0] and "ar2 repair" not in outputs[1]
    # Only the chief wrote the run folder; the other worker's temporary folder is gone.
    assert os.path.exists(os.path.join(out, "report.json"))
    assert glob.glob(os.path.join(out, "checkpoints", "ckpt-*.index"))
    assert not glob.glob(os.path.join(out, ".workertemp_*"))
    initial = keras.saving.load_model(model, compile=False).get_weights()
    assert_same_run(out, reference, initial)


MIRRORED = textwrap.dedent("""
    import sys
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    from ar2_tf import train
    from ar2_tf.cli import run_main
    sys.exit(run_main(train.main, sys.argv[1:]))
""")


@pytest.mark.slow
def test_two_mirrored_replicas_match_one_device(single_device_run, tmp_path):
    model, reference = single_device_run
    out = str(tmp_path / "run")
    result = subprocess.run([sys.executable, "-c", MIRRORED, *RUN, "--model", model, "--out", out,
                             "--strategy", "mirrored"], env=subprocess_env(), cwd=ROOT, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    initial = keras.saving.load_model(model, compile=False).get_weights()
    assert_same_run(out, reference, initial)


def test_replica_slices_give_each_replica_its_rows_of_every_global_batch():
    batches = tf.data.Dataset.range(24).batch(8).map(lambda x: ((x, -x), x * 10))

    class Context:  # worker 1 of 2, with 2 local replicas: replicas 2 and 3 of 4
        num_replicas_in_sync, num_input_pipelines, input_pipeline_id = 4, 2, 1

    got = [(a.numpy().tolist(), b.numpy().tolist(), c.numpy().tolist())
           for (a, b), c in distributed_loop.replica_slices(batches, 8, Context())]
    assert got == [([4, 5], [-4, -5], [40, 50]), ([6, 7], [-6, -7], [60, 70]),
                   ([12, 13], [-12, -13], [120, 130]), ([14, 15], [-14, -15], [140, 150]),
                   ([20, 21], [-20, -21], [200, 210]), ([22, 23], [-22, -23], [220, 230])]


def test_strategy_choice_and_chief_rules(monkeypatch, tmp_path):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    strategy = distribution.get_strategy("auto")
    assert not distribution.is_multi_worker(strategy) and distribution.is_chief(strategy)
    assert distribution.worker_dir(str(tmp_path), strategy) == str(tmp_path)
    with pytest.raises(Exception, match="does not split evenly over 3 replicas"):
        distribution.check_global_batch(8, type("S", (), {"num_replicas_in_sync": 3})())
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": {"worker": ["a:1", "b:2"]}}))
    assert distribution._workers_in_tf_config() == 2
