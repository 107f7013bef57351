"""scripts/last_phase.py: a run's last checkpoint becomes a model file with the last epoch's weights, whatever
phase the run kept."""

import glob
import json
import os
import sys

import numpy as np
import tensorflow as tf

from tests.helpers import tiny_classifier

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts"))
import last_phase  # noqa: E402  (scripts/last_phase.py)


def test_the_last_checkpoint_is_saved_as_a_model_with_the_last_epoch_weights(tmp_path):
    pretrained = tiny_classifier(seed=0)
    pretrained.save(tmp_path / "pretrained.keras")
    trained = tiny_classifier(seed=1)  # stands for the classifier after the run's final epoch
    runs = tmp_path / "bench" / "runs"
    for name, checkpointed in (("ar2_fog", True), ("finetune_fog", False), ("ar2_snow", None), ("bn_adapt_fog", True)):
        (runs / name / "checkpoints").mkdir(parents=True)
        if checkpointed is not None:  # BatchNorm adaptation: one pass, checkpointed, nothing validated
            validation = None if name.startswith("bn_adapt") else {"kept": "pretrained"}
            (runs / name / "report.json").write_text(json.dumps({"validation": validation}))
        if checkpointed:  # as the run's checkpoint callback writes it: the classifier beside the optimizers
            tf.train.Checkpoint(classifier=trained, epoch=tf.Variable(3)).save(str(runs / name / "checkpoints" / "ckpt"))
    ready, skipped = last_phase.finished_runs(str(tmp_path / "bench"))
    assert ready == [(str(runs / "ar2_fog"), "pretrained")]
    assert dict(skipped) == {str(runs / "finetune_fog"): "no checkpoint (a single pass)",
                             str(runs / "ar2_snow"): "not finished",
                             str(runs / "bn_adapt_fog"): "no phases to choose from (its model is its last phase)"}
    path = last_phase.save_last_phase(ready[0][0], str(tmp_path / "pretrained.keras"))
    import keras

    restored = keras.saving.load_model(path, compile=False)
    for got, want in zip(restored.weights, trained.weights):
        np.testing.assert_array_equal(got.numpy(), want.numpy())
    assert any(not np.array_equal(w.numpy(), b.numpy()) for w, b in zip(trained.weights, pretrained.weights))
    # Saved once: a second call keeps the file (and its fingerprint); a newer checkpoint replaces it.
    stamp = os.stat(path).st_mtime_ns
    assert last_phase.save_last_phase(ready[0][0], str(tmp_path / "pretrained.keras")) == path
    assert os.stat(path).st_mtime_ns == stamp
    later = os.path.getmtime(path) + 10
    for index in glob.glob(str(runs / "ar2_fog" / "checkpoints" / "ckpt-*.index")):
        os.utime(index, (later, later))
    last_phase.save_last_phase(ready[0][0], str(tmp_path / "pretrained.keras"))
    assert os.stat(path).st_mtime_ns != stamp
