"""`python -m ar2_tf.evaluate` end to end on the demo data with tiny models."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf

from ar2_tf.cli import run_main
from ar2_tf.corruptions import corrupt
from ar2_tf.data.sources import load_dataset
from ar2_tf.evaluate import main

TEST_SIZE = 40
from tests.helpers import tiny_classifier, trained_tiny_classifier


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    folder = tmp_path_factory.mktemp("models")
    paths = {}
    for seed in (0, 1):
        paths[seed] = str(folder / f"tiny{seed}.keras")
        trained_tiny_classifier(seed).save(paths[seed])
    return paths


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return str(tmp_path_factory.mktemp("cache"))


def _errors_by_hand(model_path, corruption, severity):
    """Error (%) computed without the evaluation code: direct corrupt() with the documented seed."""
    import keras

    model = keras.saving.load_model(model_path, compile=False)
    images, labels = next(iter(load_dataset("demo", None, 1, TEST_SIZE).test.batch(1000)))
    if corruption is not None:  # generation batch 256 > TEST_SIZE: one batch, index 0
        images = corrupt(images, corruption, severity, tf.constant([1000 * severity, 0], tf.int64))
    predicted = np.argmax(model(tf.cast(images, tf.float32) / 255.0, training=False), axis=-1)
    return 100.0 * np.mean(predicted != labels.numpy())


def _run(argv):
    return main(argv + ["--verbose", "0"])


def test_evaluates_models_writes_results_and_tables(models, cache, tmp_path):
    out = str(tmp_path / "eval")
    _run(["--model", models[0], "--model", models[1], "--baseline", models[0], "--dataset", "demo",
          "--corruptions", "gaussian_noise,brightness", "--severities", "1-2", "--test-size", str(TEST_SIZE),
          "--out", out, "--cache-dir", cache])
    results = json.load(open(os.path.join(out, "evaluation.json")))
    assert results["complete"] and results["baseline"] == "tiny0 (baseline)"
    assert results["order"] == ["tiny0 (baseline)", "tiny0", "tiny1"]
    entry = results["models"]["tiny1"]
    assert entry["clean"] == pytest.approx(_errors_by_hand(models[1], None, None))
    # the corrupted cells really are on corrupted images (the model's errors move with them)
    assert any(value != entry["clean"] for cells in entry["errors"].values() for value in cells.values())
    assert entry["errors"]["gaussian_noise"]["2"] == pytest.approx(_errors_by_hand(models[1], "gaussian_noise", 2))
    assert entry["errors"]["brightness"]["1"] == pytest.approx(_errors_by_hand(models[1], "brightness", 1))
    summary = entry["summary"]
    brightness = entry["errors"]["brightness"]
    assert summary["unnormalized"]["ce"]["brightness"] == pytest.approx((brightness["1"] + brightness["2"]) / 2)
    base = results["models"]["tiny0 (baseline)"]["errors"]["brightness"]
    assert summary["baseline"]["ce"]["brightness"] == pytest.approx(
        100 * (brightness["1"] + brightness["2"]) / (base["1"] + base["2"]))
    assert "alexnet" not in summary  # ImageNet-C only
    for name in ("table1.md", "table1.csv", "table1_baseline.md", "table1_baseline_relative.json",
                 "errors_tiny1.md"):
        assert os.path.exists(os.path.join(out, name)), name
    assert "| tiny1 |" in open(os.path.join(out, "table1.md")).read()


def test_run_folder_gives_dataset_and_preprocessing_and_results_are_reused(models, cache, tmp_path):
    run = tmp_path / "run_fog"
    run.mkdir()
    os.link(models[1], run / "model.keras")
    report = {"config": {"dataset": "demo", "corruption": "gaussian_noise", "method": "ar2", "data_dir": None},
              "preprocessing": "unit"}
    (run / "report.json").write_text(json.dumps(report))
    out = str(tmp_path / "eval")
    argv = ["--model", str(run), "--corruptions", "gaussian_noise", "--severities", "1",
            "--test-size", str(TEST_SIZE), "--out", out, "--cache-dir", cache]
    _run(argv)
    path = os.path.join(out, "evaluation.json")
    results = json.load(open(path))
    assert results["setup"]["dataset"] == "demo"
    assert results["models"]["ar2:gaussian_noise"]["preprocessing"] == "unit"
    assert os.path.exists(os.path.join(out, "table2.md"))
    # a second run with the same setup reuses the measured cells instead of recomputing them
    results["models"]["ar2:gaussian_noise"]["errors"]["gaussian_noise"]["1"] = 12.5
    json.dump(results, open(path, "w"))
    _run(argv)
    assert json.load(open(path))["models"]["ar2:gaussian_noise"]["errors"]["gaussian_noise"]["1"] == 12.5


def test_a_failing_corruption_keeps_the_others(models, tmp_path, capsys):
    folder = tmp_path / "cifar_c"
    folder.mkdir()
    rng = np.random.default_rng(0)
    np.save(folder / "gaussian_noise.npy", rng.integers(0, 256, (5 * TEST_SIZE, 32, 32, 3), dtype=np.uint8))
    np.save(folder / "labels.npy", rng.integers(0, 6, 5 * TEST_SIZE).astype(np.uint8))
    out = str(tmp_path / "eval")
    status = run_main(main, ["--model", models[0], "--dataset", "demo", "--corrupted-dir", str(folder),
                             "--corruptions", "fog,gaussian_noise", "--severities", "1,3", "--test-size",
                             str(TEST_SIZE), "--out", out, "--verbose", "0"])
    assert status == 2
    message = capsys.readouterr().err
    assert "1 corruption evaluation(s) failed" in message and "fog.npy" in message
    results = json.load(open(os.path.join(out, "evaluation.json")))
    entry = results["models"]["tiny0"]
    assert not results["complete"] and "fog" in entry["failed"]
    assert sorted(entry["errors"]["gaussian_noise"]) == ["1", "3"]
    assert os.path.exists(os.path.join(out, "table1.md"))


def test_a_model_under_tent_is_evaluated_beside_the_others_and_adapts_on_each_set(tmp_path):
    model = str(tmp_path / "bn.keras")
    tiny_classifier(num_classes=6, input_shape=(32, 32, 3), seed=2).save(model)
    out = str(tmp_path / "eval")
    _run(["--model", model, "--tent", model, "--baseline", model, "--dataset", "demo",
          "--corruptions", "gaussian_noise", "--severities", "1,5", "--test-size", str(TEST_SIZE), "--out", out])
    results = json.load(open(os.path.join(out, "evaluation.json")))
    assert results["order"] == ["bn (baseline)", "bn", "bn + TENT"]
    tent, plain = results["models"]["bn + TENT"], results["models"]["bn"]
    assert tent["adaptation"] == "tent" and plain["adaptation"] is None
    assert plain["clean"] == pytest.approx(_errors_by_hand(model, None, None))
    # TENT predicts with batch statistics (40 images, one batch): not the plain model's errors
    assert (tent["clean"], tent["errors"]) != (plain["clean"], plain["errors"])
    assert tent["summary"]["baseline"]["reference"] == "bn (baseline)"


def test_tent_on_a_model_without_batchnorm_is_one_clear_line(models, capsys):
    assert run_main(main, ["--tent", models[0], "--dataset", "demo", "--corruptions", "fog", "--severities", "1",
                           "--test-size", str(TEST_SIZE), "--verbose", "0"]) == 2
    error = capsys.readouterr().err
    assert "TENT adapts BatchNorm scale and offset; this model has no BatchNormalization layer" in error
    assert "Traceback" not in error


def test_nothing_to_evaluate_is_a_user_error(capsys):
    assert run_main(main, ["--dataset", "demo"]) == 2
    assert "nothing to evaluate: pass --model" in capsys.readouterr().err


def test_unknown_corruption_and_missing_dataset_are_user_errors(models, capsys):
    assert run_main(main, ["--model", models[0], "--dataset", "demo", "--corruptions", "fogg"]) == 2
    assert "unknown corruption 'fogg'" in capsys.readouterr().err
    assert run_main(main, ["--model", models[0]]) == 2
    assert "--dataset is required" in capsys.readouterr().err


def test_imagenet_c_folder_gets_alexnet_normalisation(tmp_path):
    import keras

    rng = np.random.default_rng(0)
    classes = ("n01440764", "n01443537")

    def write_images(folder, count):
        for name in classes:
            os.makedirs(folder / name)
            for i in range(count):
                image = rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)
                tf.io.write_file(str(folder / name / f"{i}.JPEG"), tf.io.encode_jpeg(image))

    write_images(tmp_path / "imagenet" / "train", 1)
    write_images(tmp_path / "imagenet" / "val", 3)
    for severity in (1, 2):
        write_images(tmp_path / "imagenet_c" / "fog" / str(severity), 3)
    model_path = str(tmp_path / "resnet.keras")
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(4, 3)(inputs))
    keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(x)).save(model_path)
    out = tmp_path / "eval"
    _run(["--model", model_path, "--dataset", "imagenet", "--data-dir", str(tmp_path / "imagenet"),
          "--corrupted-dir", str(tmp_path / "imagenet_c"), "--corruptions", "fog", "--severities", "1-2",
          "--image-size", "32", "--out", str(out)])
    entry = json.load(open(out / "evaluation.json"))["models"]["resnet"]
    assert entry["preprocessing"] == "caffe"
    fog = entry["errors"]["fog"]
    assert entry["summary"]["alexnet"]["ce"]["fog"] == pytest.approx(
        100 * (fog["1"] + fog["2"]) / (67.474 + 76.05))
    assert (out / "table1_alexnet.md").exists() and (out / "table1_alexnet_relative.csv").exists()


def _by_hand(model_path, corruption, severity, preprocess):
    """`_errors_by_hand` with any preprocessing function."""
    import keras

    model = keras.saving.load_model(model_path, compile=False)
    images, labels = next(iter(load_dataset("demo", None, 1, TEST_SIZE).test.batch(1000)))
    images = corrupt(images, corruption, severity, tf.constant([1000 * severity, 0], tf.int64))
    predicted = np.argmax(model(preprocess(tf.cast(images, tf.float32)), training=False), axis=-1)
    return 100.0 * np.mean(predicted != labels.numpy())


def test_all_models_share_one_pass_per_set_each_with_its_own_preprocessing(models, tmp_path, monkeypatch):
    """Streamed by default: each corrupted set is generated once for every model, and the errors equal
    those of each model evaluated alone."""
    import keras

    from ar2_tf.evaluation.generated_sets import GeneratedSource
    from tests.helpers import write_run

    run = write_run(tmp_path / "run_tf", keras.saving.load_model(models[1], compile=False), preprocessing="tf",
                    dataset="demo", corruption="brightness", method="finetune")
    made = []
    stream = GeneratedSource.stream
    monkeypatch.setattr(GeneratedSource, "stream", lambda self, c, s: made.append((c, s)) or stream(self, c, s))
    monkeypatch.setattr(GeneratedSource, "_generate", lambda *a: pytest.fail("wrote a set without --cache-dir"))
    common = ["--dataset", "demo", "--corruptions", "gaussian_noise,brightness", "--severities", "1,3",
              "--test-size", str(TEST_SIZE), "--val-size", "0"]  # the whole split, with or without the run
    _run(["--model", models[0], "--model", models[1], "--model", run, "--baseline", models[0],
          "--out", str(tmp_path / "together")] + common)
    assert made == [("gaussian_noise", 1), ("gaussian_noise", 3), ("brightness", 1), ("brightness", 3)]
    together = json.load(open(tmp_path / "together" / "evaluation.json"))["models"]
    assert together["finetune:brightness"]["preprocessing"] == "tf"
    assert together["finetune:brightness"]["errors"]["gaussian_noise"]["3"] == pytest.approx(
        _by_hand(models[1], "gaussian_noise", 3, lambda x: x / 127.5 - 1))
    assert together["tiny1"]["errors"]["gaussian_noise"]["3"] == pytest.approx(
        _by_hand(models[1], "gaussian_noise", 3, lambda x: x / 255.0))
    for label, path in (("tiny0", models[0]), ("tiny1", models[1]), ("finetune:brightness", run)):
        out = tmp_path / f"alone_{label.replace(':', '_')}"
        _run(["--model", path, "--out", str(out)] + common)
        alone = json.load(open(out / "evaluation.json"))["models"][label]
        assert (alone["clean"], alone["errors"]) == (together[label]["clean"], together[label]["errors"])
    assert together["tiny0 (baseline)"]["errors"] == together["tiny0"]["errors"]  # one file: measured once


def test_streamed_and_cached_evaluations_write_identical_errors(models, cache, tmp_path):
    common = ["--model", models[0], "--model", models[1], "--dataset", "demo", "--corruptions",
              "gaussian_noise,contrast", "--severities", "2,5", "--test-size", str(TEST_SIZE)]
    _run(common + ["--out", str(tmp_path / "streamed")])
    _run(common + ["--out", str(tmp_path / "cached"), "--cache-dir", cache])
    streamed, cached = (json.load(open(tmp_path / name / "evaluation.json"))["models"]
                        for name in ("streamed", "cached"))
    for label in ("tiny0", "tiny1"):
        assert streamed[label]["errors"] == cached[label]["errors"] and streamed[label]["clean"] == cached[label]["clean"]
    assert len(streamed["tiny0"]["errors"]) == 2


def test_a_cache_over_budget_is_one_clear_line_and_status_2(models, tmp_path, capsys):
    status = run_main(main, ["--model", models[0], "--dataset", "demo", "--corruptions", "fog,snow",
                             "--test-size", str(TEST_SIZE), "--cache-dir", str(tmp_path / "cache"),
                             "--cache-budget-gb", "0.0001", "--verbose", "0"])
    error = capsys.readouterr().err.strip()
    assert status == 2 and "\n" not in error and "Traceback" not in error
    assert "caching 10 corrupted set(s) of 40 images would take 1.2 MB" in error
    assert "over the cache budget of 0.0001 GB; leave out --cache-dir to stream them" in error
    assert not os.path.exists(tmp_path / "cache")
    from ar2_tf.evaluate import build_parser
    from ar2_tf.evaluation.generated_sets import DEFAULT_CACHE_BUDGET_GB

    assert f"(default {DEFAULT_CACHE_BUDGET_GB:g} GB;" in " ".join(build_parser().format_help().split())


def test_models_with_the_same_weights_are_measured_once_and_share_the_results(models, tmp_path, monkeypatch):
    """A run whose guard kept the pretrained weights is the pretrained classifier under another name: it is
    measured once, and each name gets the same errors; a model one weight value away is measured."""
    import shutil

    import keras

    from ar2_tf.evaluation.measurement import Measurement

    copy = str(tmp_path / "copy_of_tiny0.keras")
    shutil.copy(models[0], copy)
    nudged = keras.saving.load_model(models[0], compile=False)
    kernel = nudged.weights[0].numpy().copy()
    kernel.flat[0] = np.nextafter(kernel.flat[0], np.inf)
    nudged.weights[0].assign(kernel)
    nudged_path = str(tmp_path / "nudged.keras")
    nudged.save(nudged_path)
    measured = []
    counter = Measurement.counter
    monkeypatch.setattr(Measurement, "counter", lambda self, model: measured.append(self.title) or counter(self, model))
    out = str(tmp_path / "eval")
    _run(["--model", copy, "--model", nudged_path, "--model", models[1], "--baseline", models[0],
          "--dataset", "demo", "--corruptions", "gaussian_noise", "--severities", "1,3",
          "--test-size", str(TEST_SIZE), "--out", out])
    assert measured == ["tiny0 (baseline)", "nudged", "tiny1"]
    results = json.load(open(os.path.join(out, "evaluation.json")))["models"]
    base, same = results["tiny0 (baseline)"], results["copy_of_tiny0"]
    assert same["same_weights_as"] == "tiny0 (baseline)" and "same_weights_as" not in results["nudged"]
    assert (same["clean"], same["errors"]) == (base["clean"], base["errors"])
    assert same["errors"]["gaussian_noise"]["3"] == pytest.approx(_errors_by_hand(models[0], "gaussian_noise", 3))
    assert same["summary"]["baseline"]["mce"] == pytest.approx(100.0)


def test_earlier_cells_are_reused_by_file_and_preprocessing_whatever_the_label(models, tmp_path, monkeypatch):
    """A file keeps its cells when a second file of its name changes its label; the same file under another
    preprocessing is measured again."""
    import shutil

    from ar2_tf.evaluation import multi_model, suite

    paths = []
    for seed, folder in ((0, "a"), (1, "b")):
        (tmp_path / folder).mkdir()
        paths.append(str(tmp_path / folder / "model.keras"))
        shutil.copy(models[seed], paths[-1])
    measured = []  # (model, preprocessing) of every pass over a test set, clean or corrupted
    count = multi_model.count_errors

    def counting(batches, counters, *args):
        measured.extend((key.title, key.preprocessing) for key in counters)
        return count(batches, counters, *args)

    monkeypatch.setattr(multi_model, "count_errors", counting)
    monkeypatch.setattr(suite, "count_errors", counting)
    common = ["--dataset", "demo", "--corruptions", "brightness", "--severities", "1", "--test-size", str(TEST_SIZE),
              "--out", str(tmp_path / "eval")]
    _run(["--model", paths[0], "--preprocessing", "unit"] + common)
    assert measured == [("model", "unit")] * 2  # clean, then brightness 1
    _run(["--model", paths[0], "--model", paths[1], "--preprocessing", "unit"] + common)
    assert measured[2:] == [("b/model", "unit")] * 2
    _run(["--model", paths[0], "--preprocessing", "tf"] + common)
    assert measured[4:] == [("model", "tf")] * 2
    results = json.load(open(tmp_path / "eval" / "evaluation.json"))["models"]
    assert results["model"]["preprocessing"] == "tf"
