"""export.exporter on a tiny run: versions, models.config, interrupted exports, verification that can fail."""

import dataclasses
import hashlib
import json
import os

import numpy as np
import pytest
import tensorflow as tf

from ar2_tf.cli import run_main
from ar2_tf.errors import UserError
from export import __main__ as cli
from export import exporter, layout, model_config
from export.exporter import ExportOptions, export_runs
from export.finished_run import read_run
from export.verify import ExportVerificationError, verify_export
from tests.helpers import tiny_classifier, write_run

NAME = "ar2_cifar10_gaussian_noise"


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    return write_run(tmp_path_factory.mktemp("runs") / "tiny", tiny_classifier(num_classes=10))


@pytest.fixture(scope="module")
def options(cifar10_test, tmp_path_factory):
    """Real CIFAR-10 test images for verification (the 16 px tiny model exercises the resize)."""
    path = tmp_path_factory.mktemp("images") / "images.npz"
    np.savez(path, images=cifar10_test[0][:4])
    return ExportOptions(verify_images=str(path))


@pytest.fixture(scope="module")
def serving(tiny_run, options, tmp_path_factory):
    out = tmp_path_factory.mktemp("serving")
    results = export_runs([tiny_run], out, options=options, log=lambda text: None)
    return out, results


def _digest(folder):
    digest = hashlib.sha256()
    for root, _, files in sorted(os.walk(folder)):
        for name in sorted(files):
            path = os.path.join(root, name)
            digest.update(path.encode() + open(path, "rb").read() + str(os.stat(path).st_mtime_ns).encode())
    return digest.hexdigest()


def _visible(model_dir):
    return sorted(os.listdir(model_dir))


def test_first_export(serving):
    out, results = serving
    assert [(r["name"], r["version"]) for r in results] == [(NAME, 1)]
    assert results[0]["checked"] == ["serving_default", "predict_preprocessed", "serving_default at 2x size", "cam"]
    assert _visible(out / NAME) == ["1"]
    assert os.path.isfile(out / NAME / "1" / "assets.extra" / exporter.METADATA_FILE)


def test_second_export_makes_version_2_without_touching_version_1(serving, tiny_run, options):
    out, _ = serving
    before = _digest(out / NAME / "1")
    results = export_runs([tiny_run], out, options=options, log=lambda text: None)
    assert results[0]["version"] == 2
    assert _visible(out / NAME) == ["1", "2"]
    assert _digest(out / NAME / "1") == before
    entries = model_config.read_models_config(out / model_config.CONFIG_FILE).model_config_list.config
    assert [(e.name, e.base_path) for e in entries] == [(NAME, f"{out}/{NAME}")]
    with pytest.raises(UserError, match="already exists"):
        export_runs([tiny_run], out, options=ExportOptions(version=1, verify_images=options.verify_images))
    assert _digest(out / NAME / "1") == before


@pytest.mark.parametrize("where", ["save", "verify"])
def test_interrupted_export_leaves_no_visible_partial_version(tiny_run, options, tmp_path, monkeypatch, where):
    real_save = tf.saved_model.save

    def crash_after_writing(module, folder, signatures):
        real_save(module, folder, signatures=signatures)  # files are on disk, then the process "dies"
        raise KeyboardInterrupt

    def disagree(*args, **kwargs):
        raise ExportVerificationError("serving_default: top-1 classes differ")

    if where == "save":
        monkeypatch.setattr(exporter.tf.saved_model, "save", crash_after_writing)
    else:
        monkeypatch.setattr(exporter, "verify_export", disagree)
    with pytest.raises((KeyboardInterrupt, ExportVerificationError)):
        export_runs([tiny_run], tmp_path, options=options, log=lambda text: None)
    assert layout.existing_versions(tmp_path / NAME) == []
    assert _visible(tmp_path / NAME) == []
    assert not os.path.exists(tmp_path / model_config.CONFIG_FILE)


def test_verification_catches_a_serving_graph_that_preprocesses_differently(serving, tiny_run, options):
    out, _ = serving
    run = read_run(tiny_run)
    images = exporter.verification_images(run, options.verify_images)
    verify_export(str(out / NAME / "1"), run, images)
    with pytest.raises(ExportVerificationError, match="differ from the Keras model"):
        verify_export(str(out / NAME / "1"), dataclasses.replace(run, preprocessing="tf"), images)


def test_several_runs_need_distinct_names(tiny_run, options, tmp_path):
    with pytest.raises(UserError, match="give each run its own name in `names`"):
        export_runs([tiny_run, tiny_run], tmp_path, options=options)
    with pytest.raises(UserError, match="2 `names` for 1 `run_paths`"):
        export_runs([tiny_run], tmp_path, names=["a", "b"], options=options)
    with pytest.raises(UserError, match="model name"):
        export_runs([tiny_run], tmp_path, names=["../escape"], options=options)
    assert os.listdir(tmp_path) == []


def test_cli(tiny_run, options, tmp_path, capsys):
    assert run_main(cli.main, ["--run", tiny_run, "--out", str(tmp_path), "--force"]) == 2
    assert "--force replaces an existing version only together with --version" in capsys.readouterr().err
    code = run_main(cli.main, ["--run", tiny_run, "--out", str(tmp_path), "--name", "tiny", "--base-path",
                               "/models", "--verify-images", options.verify_images, "--max-image-size", "512"])
    printed = capsys.readouterr().out
    assert code == 0
    assert "signature_def['serving_default']" in printed and "shape: (-1, -1, -1, 3)" in printed
    entries = model_config.read_models_config(tmp_path / model_config.CONFIG_FILE).model_config_list.config
    assert [(e.name, e.base_path) for e in entries] == [("tiny", "/models/tiny")]
    assert _visible(tmp_path / "tiny") == ["1"]


def test_a_run_that_lost_clean_accuracy_is_refused_unless_allowed(options, tmp_path, capsys):
    run = write_run(tmp_path / "run", tiny_classifier(num_classes=10), max_clean_drop=1.0)
    report_path = os.path.join(run, "report.json")
    with open(report_path) as file:
        report = json.load(file)
    report.update(before={"clean": 7.4}, after={"clean": 9.0})
    with open(report_path, "w") as file:
        json.dump(report, file)
    argv = ["--run", run, "--out", str(tmp_path / "serving"), "--verify-images", options.verify_images]
    assert run_main(cli.main, argv) == 2
    error = capsys.readouterr().err
    assert "raised the clean test error by 1.60 points (from 7.40% to 9.00%)" in error
    assert "Pass --allow-clean-drop to export it anyway." in error and not (tmp_path / "serving").exists()
    assert run_main(cli.main, argv + ["--allow-clean-drop"]) == 0
    assert _visible(tmp_path / "serving" / NAME) == ["1"]


def test_a_model_of_any_input_size_is_served_at_the_size_it_was_trained_at(options, tmp_path):
    run = write_run(tmp_path / "run", tiny_classifier(num_classes=10, input_shape=(None, None, 3)))
    with pytest.raises(UserError, match="takes images of any size and report.json does not say which size"):
        read_run(run)  # as an older run recorded it: [None, None, 3]
    report = json.load(open(os.path.join(run, "report.json")))
    report["input_shape"] = [24, 24, 3]  # what python -m ar2_tf.train now records: the data's size
    with open(os.path.join(run, "report.json"), "w") as file:
        json.dump(report, file)
    result, = export_runs([run], tmp_path / "serving", options=options, log=lambda text: None)
    assert "serving_default at 2x size" in result["checked"]  # verified against Keras on 24 px inputs
    loaded = tf.saved_model.load(str(tmp_path / "serving" / NAME / "1"))
    spec = loaded.signatures["predict_preprocessed"].structured_input_signature[1]["inputs"]
    assert spec.shape.as_list() == [None, 24, 24, 3]


def _foldable_classifier():
    """Conv -> BatchNorm -> ReLU twice, with BatchNorm statistics that matter: two layers fold."""
    import keras

    from tests.helpers import with_batchnorm_statistics

    keras.utils.set_random_seed(0)
    inputs = keras.Input((16, 16, 3))
    x = inputs
    for index, filters in enumerate((8, 12)):
        x = keras.layers.Conv2D(filters, 3, padding="same", name=f"conv{index}")(x)
        x = keras.layers.ReLU()(keras.layers.BatchNormalization(name=f"bn{index}")(x))
    x = keras.layers.GlobalAveragePooling2D()(x)
    return with_batchnorm_statistics(keras.Model(inputs, keras.layers.Dense(10, activation="softmax")(x)))


def test_the_export_serves_batchnorm_folded_unless_that_misses_the_check(options, tmp_path, monkeypatch):
    """Folded by default (faster answers); a fold whose rounding the verification refuses is exported unfolded,
    with a note, never refused."""
    from export import serving_module

    run = write_run(tmp_path / "run", _foldable_classifier())
    lines = []
    folded = export_runs([run], tmp_path / "serving", options=options, log=lines.append)[0]
    assert folded["batchnorm_folded"] == 2 and "2 BatchNorm layer(s) folded" in "\n".join(lines)
    with open(tmp_path / "serving" / NAME / "1" / "assets.extra" / exporter.METADATA_FILE) as file:
        assert json.load(file)["verification"]["batchnorm_folded"] == 2

    real_fold = serving_module.fold_batchnorm

    def off_by_rounding(model):  # a fold whose bias is off by more than the check's 1e-5 tolerance allows
        copy = real_fold(model)
        kernel, bias = copy.get_layer("conv1").get_weights()
        copy.get_layer("conv1").set_weights([kernel, bias + 0.05])
        return copy

    monkeypatch.setattr(serving_module, "fold_batchnorm", off_by_rounding)
    lines.clear()
    unfolded = export_runs([run], tmp_path / "serving", options=options, log=lines.append)[0]
    assert unfolded["version"] == 2 and unfolded["batchnorm_folded"] == 0
    assert "differs from the Keras model beyond the check's tolerance" in "\n".join(lines)
    assert unfolded["max_probability_difference"] <= 1e-5


def test_a_model_with_nothing_folded_that_fails_the_check_is_refused_at_once(tiny_run, options, tmp_path,
                                                                             monkeypatch):
    """No unfolded retry where nothing was folded (the tiny model's BatchNorm follows a ReLU): it would be the
    same graph, checked twice, with a note blaming the fold."""
    calls, lines = [], []

    def disagree(*args, **kwargs):
        calls.append(1)
        raise ExportVerificationError("serving_default: top-1 classes differ")

    monkeypatch.setattr(exporter, "verify_export", disagree)
    with pytest.raises(ExportVerificationError):
        export_runs([tiny_run], tmp_path, options=options, log=lines.append)
    assert calls == [1] and not any("unfolded" in line for line in lines)
