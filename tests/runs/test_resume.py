"""Exact resume: a run killed with SIGKILL mid-phase and re-run ends where an uninterrupted run does."""

import json
import os
import signal
import subprocess
import sys
import time

import keras
import numpy as np
import pytest
import tensorflow as tf

from ar2_tf.models.architectures import cifar_resnet
from tests.helpers import ROOT


def run_args(model, out):
    return ["--dataset", "demo", "--model", model, "--train-size", "192", "--test-size", "32", "--batch-size", "32",
            "-T", "2", "-N", "1", "-M", "1", "--step-unit", "epoch", "--deterministic", "--verbose", "0",
            "--out", out]


# `python -m ar2_tf.train` that announces when it has finished batch 3 of the third phase (epoch 2) by writing
# the file argv[1], then waits there: the test kills it on that observed event, always mid-phase.
PAUSED_TRAIN = """
import pathlib, sys, time
from ar2_tf import cli, train
from ar2_tf.method.callbacks import NonFiniteGuard

marker = pathlib.Path(sys.argv[1])
epoch_begin, batch_end = NonFiniteGuard.on_epoch_begin, NonFiniteGuard.on_train_batch_end

def on_epoch_begin(self, epoch, logs=None):
    self.test_epoch = epoch
    epoch_begin(self, epoch, logs)

def on_train_batch_end(self, batch, logs=None):
    batch_end(self, batch, logs)
    if self.test_epoch == 2 and batch == 3:
        marker.write_text("mid-phase")
        time.sleep(600)

NonFiniteGuard.on_epoch_begin, NonFiniteGuard.on_train_batch_end = on_epoch_begin, on_train_batch_end
sys.exit(cli.run_main(train.main, sys.argv[2:]))
"""


def progress(out):
    path = os.path.join(out, "checkpoints", "progress.jsonl")
    if not os.path.exists(path):
        return []
    with open(path) as file:
        return [json.loads(line) for line in file if line.strip()]


@pytest.mark.slow
def test_sigkill_mid_phase_then_rerun_matches_an_uninterrupted_run(tmp_path):
    model = str(tmp_path / "pretrained.keras")
    keras.utils.set_random_seed(0)
    cifar_resnet("resnet8", 6).save(model)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": ROOT}
    reference, resumed = str(tmp_path / "reference"), str(tmp_path / "resumed")
    train = [sys.executable, "-m", "ar2_tf.train"]
    subprocess.run(train + run_args(model, reference), check=True, env=env, cwd=ROOT, capture_output=True)

    marker = tmp_path / "paused"
    process = subprocess.Popen([sys.executable, "-c", PAUSED_TRAIN, str(marker), *run_args(model, resumed)],
                               env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    while not marker.exists() and process.poll() is None:
        time.sleep(0.05)
    assert marker.exists(), process.stderr.read().decode()[-2000:]
    process.send_signal(signal.SIGKILL)
    process.wait()
    process.stderr.close()
    assert [line["epoch"] for line in progress(resumed)] == [0, 1]  # killed inside the third phase

    subprocess.run(train + run_args(model, resumed), check=True, env=env, cwd=ROOT, capture_output=True)
    epochs = [line["epoch"] for line in progress(resumed)]
    assert epochs == [0, 1, 2, 3]  # every phase completed exactly once: none repeated, none skipped
    expected = keras.saving.load_model(os.path.join(reference, "model.keras")).get_weights()
    got = keras.saving.load_model(os.path.join(resumed, "model.keras")).get_weights()
    for a, b in zip(expected, got):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    reports = {}
    for name, folder in (("reference", reference), ("resumed", resumed)):
        with open(os.path.join(folder, "report.json")) as file:
            reports[name] = json.load(file)
    assert reports["resumed"]["phases_run"] == 4
    # The selection survived the kill: every phase's validation errors and the kept phase as uninterrupted.
    assert [p["epoch"] for p in reports["resumed"]["validation"]["phases"]] == [0, 1, 2, 3]
    assert reports["resumed"]["validation"] == reports["reference"]["validation"]


WRITER = """
import sys, tensorflow as tf
variable = tf.Variable(tf.random.normal([4_000_000]))
step = tf.Variable(0)
manager = tf.train.CheckpointManager(tf.train.Checkpoint(v=variable, step=step), sys.argv[1], max_to_keep=2)
while True:
    step.assign_add(1)
    variable.assign(tf.fill([4_000_000], float(step.numpy())))
    manager.save()
"""


def writing(directory, stage):
    """Whether a checkpoint write is at `stage` right now: "data" (a ckpt-N_temp/ folder holds the shard being
    written) or "index" (the `checkpoint` index file is being swapped in through checkpoint.tmp*)."""
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return False
    if stage == "data":
        return any(name.endswith("_temp") for name in names)
    return any(name.startswith("checkpoint.tmp") for name in names)


@pytest.mark.slow
@pytest.mark.parametrize("stage", ["data", "index"])
def test_kill_during_checkpoint_writes_leaves_a_usable_checkpoint(tmp_path, stage):
    directory = str(tmp_path / "checkpoints")
    for _ in range(2):
        process = subprocess.Popen([sys.executable, "-c", WRITER, directory], stderr=subprocess.DEVNULL,
                                   env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
        # Kill on the observed event: a write at `stage`, after at least one complete checkpoint.
        while process.poll() is None and not (os.path.exists(os.path.join(directory, "checkpoint"))
                                              and writing(directory, stage)):
            time.sleep(0.001)
        process.send_signal(signal.SIGKILL)
        process.wait()
        variable, step = tf.Variable(tf.zeros([4_000_000])), tf.Variable(0)
        checkpoint = tf.train.Checkpoint(v=variable, step=step)
        checkpoint.restore(tf.train.latest_checkpoint(directory)).assert_consumed()
        assert step.numpy() >= 1 and np.all(variable.numpy() == float(step.numpy()))  # whole, not torn
