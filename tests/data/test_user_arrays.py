"""The user's own arrays as `--dataset npz` data (ar2_tf.data.user_arrays): any class count and image size,
one-hot and gray inputs, a held-out part when there is no test split, one-line refusals, and a run trained,
evaluated and exported on such a file."""

import json
import re

import numpy as np
import pytest

from ar2_tf.data.image_folder import held_out
from ar2_tf.data.sources import load_dataset
from ar2_tf.errors import UserError
from tests.helpers import tiny_classifier


def _arrays(count, classes=5, size=12, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (count, size, size, 3), dtype=np.uint8), np.arange(count) % classes


def _pairs(split):
    return [(x, int(y)) for x, y in split.as_numpy_iterator()]


def test_train_and_test_arrays_load_with_their_class_count_size_and_pixels(tmp_path):
    (x_train, y_train), (x_test, y_test) = _arrays(20, seed=1), _arrays(7, seed=2)
    path = str(tmp_path / "data.npz")
    np.savez(path, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test.reshape(-1, 1))
    source = load_dataset("npz", path)
    assert source.class_names == ("0", "1", "2", "3", "4") and source.image_shape == (12, 12)
    assert (source.train_size, source.test_size) == (20, 7)
    test = _pairs(source.test)
    np.testing.assert_array_equal(np.stack([x for x, _ in test]), x_test)
    assert [y for _, y in test] == list(y_test)
    subset = load_dataset("npz", path, train_size=6, image_size=16)
    assert subset.train_size == 6 and subset.image_shape == (16, 16)
    assert all(x.shape == (16, 16, 3) for x, _ in _pairs(subset.train))


def test_one_hot_labels_gray_images_whole_float_pixels_and_class_names(tmp_path):
    images, labels = _arrays(10, classes=3)
    gray = images[..., 0]
    path = str(tmp_path / "data.npz")
    np.savez(path, x_train=gray.astype(np.float32)[..., None], y_train=np.eye(4)[labels],
             x_test=gray[:4], y_test=labels[:4], class_names=np.array(["cat", "dog", "eel", "fox"]))
    source = load_dataset("npz", path)
    assert source.class_names == ("cat", "dog", "eel", "fox")  # 4 named classes, though only 3 occur
    train = _pairs(source.train)
    assert [y for _, y in train] == list(labels)
    for (image, _), plane in zip(train, gray):
        assert image.dtype == np.uint8 and image.shape == (12, 12, 3)
        for channel in range(3):
            np.testing.assert_array_equal(image[..., channel], plane)  # the same pixels, in the three channels


def test_class_names_as_labels_are_numbered_in_sorted_order_or_in_class_names_order(tmp_path):
    images, _ = _arrays(6)
    names = np.array(["dog", "cat", "eel", "cat", "dog", "cat"])
    path = str(tmp_path / "named.npz")
    np.savez(path, x_train=images, y_train=names, x_test=images[:2], y_test=names[:2])
    source = load_dataset("npz", path)
    assert source.class_names == ("cat", "dog", "eel")  # sorted, as image folders sort their class folders
    assert [y for _, y in _pairs(source.train)] == [1, 0, 2, 0, 1, 0] and [y for _, y in _pairs(source.test)] == [1, 0]
    np.savez(path, x=images, y=names, class_names=np.array(["eel", "dog", "cat", "fox"]))
    assert load_dataset("npz", path).class_names == ("eel", "dog", "cat", "fox")
    np.savez(path, x=images, y=names, class_names=np.array(["cat", "dog"]))
    with pytest.raises(UserError, match="the label 'eel' is not in class_names"):
        load_dataset("npz", path)
    np.savez(path, x_train=images, y_train=names, x_test=images[:2], y_test=np.array([0, 1]))
    with pytest.raises(UserError, match="some labels are class names and some are not"):
        load_dataset("npz", path)


def test_without_a_test_split_a_fixed_fifth_of_each_class_tests(tmp_path):
    images, labels = _arrays(30, classes=3)
    path = str(tmp_path / "xy.npz")
    np.savez(path, x=images, y=labels)
    testing = held_out(labels)
    for seed in (0, 3):  # the draw is the file's, not the run's: no run tests on its own training images
        source = load_dataset("npz", path, seed=seed)
        assert (source.train_size, source.test_size) == (24, 6)
        test = _pairs(source.test)
        assert sorted(y for _, y in test) == [0, 0, 1, 1, 2, 2]
        np.testing.assert_array_equal(np.stack([x for x, _ in test]), images[testing])
        np.testing.assert_array_equal(np.stack([x for x, _ in _pairs(source.train)]), images[~testing])


def test_a_file_of_test_images_alone_evaluates_and_tests_a_run_but_does_not_train(tmp_path, capsys):
    from ar2_tf import evaluate, train
    from ar2_tf.cli import run_main

    (x_train, y_train), (x_test, y_test) = _arrays(24, classes=3, size=16), _arrays(6, classes=3, size=16, seed=1)
    data, tests, model = str(tmp_path / "data.npz"), str(tmp_path / "tests.npz"), str(tmp_path / "model.keras")
    np.savez(data, x_train=x_train, y_train=y_train)  # its own held-out fifth would test,
    np.savez(tests, x_test=x_test, y_test=y_test)  # but with --eval-data-dir these test instead
    tiny_classifier(num_classes=3).save(model)
    source = load_dataset("npz", tests)
    assert (source.train_size, source.test_size, source.image_shape) == (0, 6, (16, 16))

    assert run_main(train.main, ["--dataset", "npz", "--data-dir", tests, "--model", model, "--out",
                                 str(tmp_path / "refused")]) == 2
    assert "the training split holds no images" in capsys.readouterr().err
    run = str(tmp_path / "run")
    assert run_main(train.main, ["--dataset", "npz", "--data-dir", data, "--eval-data-dir", tests, "--model", model,
                                 "--preset", "tiny", "--batch-size", "8", "--verbose", "0", "--out", run]) == 0
    # Beside the run, the evaluation leaves out the run's validation images too: the pretrained model scores alike.
    assert run_main(evaluate.main, ["--model", run, "--model", model, "--dataset", "npz", "--data-dir", tests,
                                    "--corruptions", "fog", "--severities", "3", "--verbose", "0",
                                    "--out", str(tmp_path / "e")]) == 0
    with open(tmp_path / "run" / "report.json") as file:
        report = json.load(file)
    with open(tmp_path / "e" / "evaluation.json") as file:
        evaluation = json.load(file)
    entry = next(entry for entry in evaluation["models"].values() if entry["source"] == model)
    assert report["before"]["clean"] == entry["clean"]  # the same 3 test images, the same pretrained model
    assert evaluation["setup"]["validation"] == "auto"
    # The eval file's 6 images: 3 validate, 3 test; the data file's fixed held-out fifth stays out, as ever.
    assert (report["train_size"], report["val_size"], report["validation_source"]["test_size"]) == (18, 3, 3)


@pytest.mark.parametrize("arrays, message", [
    ({"x_train": np.zeros((4, 8, 8, 3)) + 0.5, "y_train": np.zeros(4)}, r"not pixels 0-255.*x \* 255"),
    ({"x_train": np.zeros((4, 8, 8, 3), np.uint8), "y_train": np.zeros(3)}, "4 train images but 3 labels"),
    ({"x_train": np.zeros((4, 8, 8, 2), np.uint8), "y_train": np.zeros(4)}, r"expected images \[N, H, W, 3\]"),
    ({"x_train": np.zeros((4, 8, 8, 3), np.uint8), "y_train": np.full((4, 2), 0.5)}, "not one-hot"),
    ({"x_train": np.zeros((4, 8, 8, 3), np.uint8), "y_train": np.array([0, 1, -1, 0])}, "labels are class indices"),
    ({"x_train": np.zeros((4, 8, 8, 3), np.uint8), "y_train": np.array([0, 1, 2, 0]),
      "class_names": np.array(["a", "b"])}, "needs 3 classes but class_names lists 2"),
    ({"images": np.zeros((4, 8, 8, 3), np.uint8), "labels": np.zeros(4)}, "expected x_train and y_train"),
])
def test_malformed_files_are_one_line_with_the_fix(tmp_path, arrays, message):
    path = str(tmp_path / "bad.npz")
    np.savez(path, **arrays)
    with pytest.raises(UserError, match=message):
        load_dataset("npz", path)


@pytest.mark.parametrize("data_dir", [None, "missing.npz", "a_folder"])
def test_npz_needs_an_existing_npz_file(tmp_path, data_dir):
    (tmp_path / "a_folder").mkdir()
    with pytest.raises(UserError, match="`dataset` npz needs `data_dir` FILE.npz"):
        load_dataset("npz", data_dir and str(tmp_path / data_dir))


def test_train_evaluate_and_export_a_run_on_a_users_arrays(tmp_path):
    """The commands as a user runs them on a 3-class, 16-px file; a model with fewer classes than the file's
    labels is refused with the class_names hint only where it applies."""
    from ar2_tf import evaluate, train
    from ar2_tf.cli import run_main
    from export import __main__ as export

    (x_train, y_train), (x_test, y_test) = _arrays(24, classes=3, size=16), _arrays(9, classes=3, size=16, seed=1)
    data, model = str(tmp_path / "data.npz"), str(tmp_path / "model.keras")
    np.savez(data, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    tiny_classifier(num_classes=3).save(model)
    run, out, serving = str(tmp_path / "run"), str(tmp_path / "eval"), str(tmp_path / "serving")
    assert run_main(train.main, ["--dataset", "npz", "--data-dir", data, "--model", model, "--preset", "tiny",
                                 "--batch-size", "8", "--verbose", "0", "--out", run]) == 0
    with open(tmp_path / "run" / "report.json") as file:
        report = json.load(file)
    assert report["class_names"] == ["0", "1", "2"] and report["input_shape"] == [16, 16, 3]
    assert (report["train_size"], report["val_size"]) == (24, 4)  # validation: 4 of the 9 test images
    assert run_main(evaluate.main, ["--model", run, "--corruptions", "fog", "--severities", "3", "--verbose", "0",
                                    "--out", out]) == 0
    with open(tmp_path / "eval" / "evaluation.json") as file:
        evaluation = json.load(file)
    assert evaluation["setup"]["dataset"] == "npz" and evaluation["setup"]["data_dir"] == data
    (model_entry,) = evaluation["models"].values()
    assert model_entry["clean"] == report["after"]["clean"]  # the run's 5 other test images, as its report
    wrong = model_entry["clean"] * 5 / 100
    assert abs(wrong - round(wrong)) < 1e-9
    assert run_main(export.main, ["--run", run, "--out", serving]) == 0
    assert (tmp_path / "serving" / "ar2_npz_gaussian_noise" / "1" / "saved_model.pb").exists()


@pytest.mark.parametrize("model_classes, hinted", [(4, True), (2, False)])
def test_a_class_count_mismatch_names_class_names_only_when_the_model_has_more(tmp_path, capsys, model_classes,
                                                                               hinted):
    from ar2_tf import train
    from ar2_tf.cli import run_main

    images, labels = _arrays(12, classes=3, size=16)
    data, model = str(tmp_path / "data.npz"), str(tmp_path / "model.keras")
    np.savez(data, x=images, y=labels)
    tiny_classifier(num_classes=model_classes).save(model)
    assert run_main(train.main, ["--dataset", "npz", "--data-dir", data, "--model", model, "--preset", "tiny",
                                 "--batch-size", "4", "--out", str(tmp_path / "run")]) == 2
    said = capsys.readouterr().err
    assert f"the model predicts {model_classes} classes but the dataset has 3" in said
    assert ("add class_names" in said) == hinted
    assert not (tmp_path / "run" / "before.json").exists()


@pytest.mark.parametrize("keys, message", [
    (("x_train", "y_train", "x_test"), "holds x_test but no y_test; add y_test (one label per image of x_test)"),
    (("x_train", "y_train", "y_test"), "holds y_test but no x_test; add x_test (the images y_test labels)"),
    (("x_train", "y_train", "x_test", "y_tst"), "holds y_tst, which no split reads; name the arrays x_train"),
    (("x_train", "y_train", "x_val", "y_val"), "holds x_val, y_val, which no split reads"),
    (("x", "y", "x_test", "y_test"), "holds x and y beside x_test; name the training arrays x_train and y_train"),
    (("x", "y_train"), "holds y_train but no x_train"),
])
def test_a_split_named_by_half_or_misspelt_is_refused_by_name_not_ignored(tmp_path, capsys, keys, message):
    """Each file would have held out a fifth of its training images to test on, the test images it holds unused."""
    from ar2_tf import train
    from ar2_tf.cli import run_main

    images, labels = _arrays(20, classes=2, size=8)
    path = str(tmp_path / "data.npz")
    np.savez(path, **{key: images if key.startswith("x") else labels for key in keys})
    with pytest.raises(UserError, match=re.escape(message)):
        load_dataset("npz", path)
    assert run_main(train.main, ["--dataset", "npz", "--data-dir", path, "--out", str(tmp_path / "run")]) == 2
    assert message in capsys.readouterr().err
