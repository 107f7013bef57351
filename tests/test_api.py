"""`ar2_tf.repair`, the Python entry point: an in-memory model and arrays become an ordinary run folder that a
second call resumes or reuses, a changed input is a different run, and options are checked as flags are."""

import json
import os

import numpy as np
import pytest

import ar2_tf
from ar2_tf.data.preprocessing import get_preprocessor
from ar2_tf.errors import UserError
from tests.helpers import tiny_classifier


def _dataset(pair):
    import tensorflow as tf

    return tf.data.Dataset.from_tensor_slices(pair).batch(4)


def _data(count, seed):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (count, 16, 16, 3), dtype=np.uint8), np.arange(count) % 3


def test_repair_an_in_memory_model_on_arrays_then_reuse_and_refuse_a_changed_run(tmp_path, capsys):
    model, train, test = tiny_classifier(num_classes=3), _data(24, 0), _data(9, 1)
    out = str(tmp_path / "run")
    options = dict(corruption="contrast", out=out, preset="tiny", batch_size=8, verbose=0, max_clean_drop=100.0,
                   val=_data(12, 3))
    result = ar2_tf.repair(model, train, test=test, **options)

    assert result.out == out and result.report["config"]["corruption"] == "contrast"
    before, after = result.report["before"], result.report["after"]
    shown = repr(result)  # what a notebook shows: the errors, not the report's every phase
    assert f"clean {before['clean']:.2f} -> {after['clean']:.2f}" in shown and len(shown) < 300
    assert f"contrast (mean over severities) {before['mean_corrupted']:.2f} -> {after['mean_corrupted']:.2f}" in shown
    with open(os.path.join(out, "report.json")) as file:
        assert json.load(file) == result.report
    config = result.report["config"]
    assert config["dataset"] == "npz" and config["pretrain_epochs"] == 0
    assert os.path.dirname(config["model"]) == os.path.dirname(config["data_dir"]) == os.path.join(out, "inputs")
    with np.load(config["data_dir"]) as data:  # the arrays as handed over
        np.testing.assert_array_equal(data["x_test"], test[0])
        np.testing.assert_array_equal(data["y_train"], train[1])
    with np.load(config["val_data_dir"]) as data:  # validation: the val arrays, the whole test split tests
        np.testing.assert_array_equal(data["x_test"], _data(12, 3)[0])
    assert result.report["validation_source"]["test_size"] == 9
    repaired = result.model
    kept = result.report["validation"]["kept"]
    assert isinstance(kept, int)  # a trained phase, not the pretrained weights (max_clean_drop allows any)
    checkpoint = tiny_classifier(num_classes=3)
    checkpoint.load_weights(os.path.join(out, "checkpoints", "kept.weights.h5"))
    for mine, kept_weights in zip(repaired.get_weights(), checkpoint.get_weights()):  # the kept phase's weights
        np.testing.assert_array_equal(mine, kept_weights)
    scores = repaired.predict(get_preprocessor(result.report["preprocessing"])(test[0]), verbose=0)
    assert 100 * np.mean(np.argmax(scores, -1) != test[1]) == pytest.approx(after["clean"])  # what report says
    assert any(not np.array_equal(a, b) for a, b in zip(repaired.get_weights(), model.get_weights()))
    for mine, built in zip(model.get_weights(), tiny_classifier(num_classes=3).get_weights()):
        np.testing.assert_array_equal(mine, built)  # the model handed over is left as it was

    capsys.readouterr()
    again = ar2_tf.repair(tiny_classifier(num_classes=3), train, test=test, **options)  # the same model, rebuilt
    assert again.report == result.report and "already holds a finished run" in capsys.readouterr().out
    (tmp_path / "run" / "inputs" / "notes.txt").write_text("the user's own file")  # never removed
    inputs = sorted(os.listdir(os.path.join(out, "inputs")))
    with pytest.raises(UserError, match=r"different run \(changed: data_dir\)"):
        ar2_tf.repair(model, _data(24, 2), test=test, **options)
    with pytest.raises(UserError, match=r"different run \(changed: model, model_sha256\)"):
        ar2_tf.repair(tiny_classifier(num_classes=3, seed=1), train, test=test, **options)
    assert sorted(os.listdir(os.path.join(out, "inputs"))) == inputs  # a refused call leaves no files behind
    replaced = ar2_tf.repair(model, _data(24, 2), test=test, force=True, **options)
    assert sorted(os.listdir(os.path.join(out, "inputs"))) == sorted(
        [os.path.basename(replaced.report["config"][key]) for key in ("model", "data_dir", "val_data_dir")]
        + ["notes.txt"])
    assert replaced.report["config"]["data_dir"] != config["data_dir"]


def test_a_data_path_is_read_as_the_command_reads_it(tmp_path):
    data, model = str(tmp_path / "data.npz"), str(tmp_path / "model.keras")
    images, labels = _data(30, 0)
    np.savez(data, x=images, y=labels)
    tiny_classifier(num_classes=3).save(model)
    result = ar2_tf.repair(model, data, out=str(tmp_path / "run"), preset="tiny", batch_size=8, verbose=0)
    config = result.report["config"]
    assert (config["dataset"], config["data_dir"], config["model"]) == ("npz", data, model)
    assert result.report["train_size"] + result.report["val_size"] == 24  # the file's fixed held-out fifth tests
    assert not os.path.exists(tmp_path / "run" / "inputs")


@pytest.mark.parametrize("call, message", [
    (lambda model, data: ar2_tf.repair(model, data, itterations=3), "unknown option.*itterations"),
    (lambda model, data: ar2_tf.repair(model, data, k=0), "`k` must be"),
    (lambda model, data: ar2_tf.repair(model, data, corruption="rain"), "unknown corruption 'rain'"),
    (lambda model, data: ar2_tf.repair("model.onnx", data, batch_size=4), "model file .model.onnx. does not exist"),
    (lambda model, data: ar2_tf.repair(object(), data), "must be a Keras model"),
    (lambda model, data: ar2_tf.repair(model, data[0]), r"train must be an \(images, labels\) pair"),
    (lambda model, data: ar2_tf.repair(model, _dataset(data[0])), r"`train` must yield \(images, labels\) pairs"),
    (lambda model, data: ar2_tf.repair(model, "data.npz", test=data), "test arrays go with train arrays"),
])
def test_wrong_options_and_inputs_raise_one_user_error_before_any_work(tmp_path, monkeypatch, call, message):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UserError, match=message):
        call(tiny_classifier(num_classes=3), _data(12, 0))
    written = [name for _, _, names in os.walk(tmp_path) for name in names]
    assert "before.json" not in written and "report.json" not in written
    for folder, _, names in os.walk(tmp_path):  # no inputs left behind but those a recorded run names
        for name in (name for name in names if name.startswith(("model-", "data-"))):
            with open(os.path.join(os.path.dirname(folder), "config.json")) as file:
                assert name in file.read()


def test_a_refused_call_removes_the_folders_it_made_but_not_the_users(tmp_path):
    mine, made = tmp_path / "mine", tmp_path / "made"
    mine.mkdir()
    for out in (mine, made):
        with pytest.raises(UserError, match="`k` must be at least 1"):
            ar2_tf.repair(tiny_classifier(num_classes=3), _data(12, 0), out=str(out), k=0)  # after writing inputs
    assert mine.is_dir() and not list(mine.iterdir()) and not made.exists()
