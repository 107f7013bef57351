"""Tests of ar2_tf.data.cifar_python on tiny folders written in the official layout."""

import builtins
import os
import pickle
import re

import numpy as np
import pytest

from ar2_tf.data.cifar_python import load_cifar_python
from ar2_tf.errors import UserError
from tests.helpers import py2_pickle

CIFAR10_NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
CIFAR10_TRAIN = [f"data_batch_{i}" for i in range(1, 6)]


def _images(n, seed):
    return np.random.default_rng(seed).integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)


def _rows(images):
    """NHWC images as official rows: the R plane, then G, then B, each row-major."""
    return images.transpose(0, 3, 1, 2).reshape(len(images), 3072)


def _dump(path, fields, writer):
    """Writes `fields` (bytes keys, as in the official files) with one of the writers below."""
    if writer == "py2":
        path.write_bytes(py2_pickle(fields))  # the official files' exact format
    elif writer == "str_keys":
        path.write_bytes(pickle.dumps({k.decode(): v for k, v in fields.items()}, protocol=4))
    else:
        path.write_bytes(pickle.dumps(fields, protocol=writer))


def write_cifar10(root, per_batch=2, test=3, writer="py2"):
    """A CIFAR-10 `cifar-10-batches-py/` folder under `root`; returns (folder, expected arrays)."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(1)
    meta = {b"num_cases_per_batch": per_batch, b"label_names": [n.encode() for n in CIFAR10_NAMES], b"num_vis": 3072}
    _dump(folder / "batches.meta", meta, writer)
    expected = {"x_train": [], "y_train": [], "x_test": [], "y_test": []}
    for index, (name, count) in enumerate([(name, per_batch) for name in CIFAR10_TRAIN] + [("test_batch", test)]):
        images, labels = _images(count, seed=index), [int(v) for v in rng.integers(0, 10, count)]
        _dump(folder / name, {b"batch_label": name.encode(), b"labels": labels, b"data": _rows(images),
                              b"filenames": [b"f%d.png" % i for i in range(count)]}, writer)
        split = "test" if name == "test_batch" else "train"
        expected[f"x_{split}"].append(images)
        expected[f"y_{split}"].extend(labels)
    expected = {key: np.concatenate(v) if key.startswith("x") else np.array(v) for key, v in expected.items()}
    return folder, expected


def write_cifar100(root, train=4, test=2, writer="py2"):
    """A CIFAR-100 `cifar-100-python/` folder under `root`; returns (folder, expected arrays)."""
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True)
    names = [f"fine_{i}".encode() for i in range(100)]
    _dump(folder / "meta", {b"fine_label_names": names, b"coarse_label_names": [b"c"] * 20}, writer)
    expected = {}
    for seed, (split, count) in enumerate([("train", train), ("test", test)]):
        images = _images(count, seed=10 + seed)
        fine = [99 - i for i in range(count)]
        _dump(folder / split, {b"filenames": [b"x.png"] * count, b"batch_label": split.encode(), b"fine_labels": fine,
                               b"coarse_labels": [i % 20 for i in range(count)], b"data": _rows(images)}, writer)
        expected[f"x_{split}"], expected[f"y_{split}"] = images, np.array(fine)
    return folder, expected


def _check(result, expected, class_names):
    assert set(result) == {"x_train", "y_train", "x_test", "y_test", "class_names"}
    for key in ("x_train", "x_test"):
        assert result[key].dtype == np.uint8 and result[key].shape[1:] == (32, 32, 3)
        np.testing.assert_array_equal(result[key], expected[key])
    for key in ("y_train", "y_test"):
        assert result[key].dtype == np.int64 and result[key].ndim == 1
        np.testing.assert_array_equal(result[key], expected[key])
    assert result["class_names"] == tuple(class_names)
    assert all(type(name) is str for name in result["class_names"])


# --- Loading ---------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("writer", ["py2", 2, 4, 5, "str_keys"])
def test_cifar10(tmp_path, writer):
    folder, expected = write_cifar10(tmp_path, writer=writer)
    result = load_cifar_python(folder, 10)
    _check(result, expected, CIFAR10_NAMES)
    assert len(result["x_train"]) == 10 and len(result["x_test"]) == 3  # five batches of two, in official order


@pytest.mark.parametrize("writer", ["py2", 4])
def test_cifar100_uses_fine_labels(tmp_path, writer):
    folder, expected = write_cifar100(tmp_path, writer=writer)
    result = load_cifar_python(folder, 100)
    _check(result, expected, [f"fine_{i}" for i in range(100)])
    assert result["y_train"].tolist() == [99, 98, 97, 96]  # fine labels, not the coarse 0..3


@pytest.mark.parametrize("num_classes, write", [(10, write_cifar10), (100, write_cifar100)])
def test_data_dir_may_be_the_parent_folder(tmp_path, num_classes, write):
    _, expected = write(tmp_path)
    np.testing.assert_array_equal(load_cifar_python(tmp_path, num_classes)["x_train"], expected["x_train"])
    np.testing.assert_array_equal(load_cifar_python(str(tmp_path), num_classes)["y_test"], expected["y_test"])


def test_pixel_layout_is_rgb_planes(tmp_path):
    # Row layout of the official files: R plane, G plane, B plane, each 32x32 row-major.
    folder, _ = write_cifar10(tmp_path)
    row = np.zeros(3072, np.uint8)
    row[0], row[1], row[32], row[1024], row[2048 + 1023] = 10, 11, 12, 20, 30
    _dump(folder / "test_batch", {b"data": row[None], b"labels": [0]}, "py2")
    image = load_cifar_python(folder, 10)["x_test"][0]
    assert image[0, 0].tolist() == [10, 20, 0]
    assert image[0, 1, 0] == 11 and image[1, 0, 0] == 12 and image[31, 31, 2] == 30
    assert image.flags.c_contiguous


# --- The folder or its files are missing -----------------------------------------------------------------------------

def test_unknown_num_classes(tmp_path):
    with pytest.raises(UserError, match="10 or 100 classes, got num_classes=7"):
        load_cifar_python(tmp_path, 7)


@pytest.mark.parametrize("num_classes, meta, layout", [(10, "batches.meta", "cifar-10-batches-py/"),
                                                       (100, "meta", "cifar-100-python/")])
def test_empty_folder_names_the_official_layout(tmp_path, num_classes, meta, layout):
    with pytest.raises(UserError) as error:
        load_cifar_python(tmp_path, num_classes)
    message = str(error.value)
    assert f"{meta} is missing" in message and layout in message and "official python-version archive" in message
    assert "pass that folder or its parent" in message


def test_data_dir_is_a_file_or_missing(tmp_path):
    (tmp_path / "data_batch_1").write_bytes(b"")
    for path in (tmp_path / "data_batch_1", tmp_path / "nope"):
        with pytest.raises(UserError, match=r"is not a folder.*cifar-10-batches-py/ holding data_batch_1"):
            load_cifar_python(path, 10)


def test_cifar100_folder_given_for_cifar10(tmp_path):
    write_cifar100(tmp_path)
    with pytest.raises(UserError, match="no CIFAR-10 python-format data: batches.meta is missing"):
        load_cifar_python(tmp_path, 10)


@pytest.mark.parametrize("missing", ["data_batch_3", "test_batch"])
def test_missing_batch_file_is_named(tmp_path, missing):
    folder, _ = write_cifar10(tmp_path)
    (folder / missing).unlink()
    with pytest.raises(UserError, match=re.escape(str(folder / missing)) + " is missing.*Extract the whole"):
        load_cifar_python(folder, 10)


def test_missing_cifar100_test_file(tmp_path):
    folder, _ = write_cifar100(tmp_path)
    (folder / "test").unlink()
    with pytest.raises(UserError, match=re.escape(str(folder / "test")) + " is missing"):
        load_cifar_python(tmp_path, 100)


# --- Files with the wrong content -------------------------------------------------------------------------------------

@pytest.mark.parametrize("data, shown", [
    (np.zeros((2, 3071), np.uint8), r"uint8 \[2, 3071\]"),
    (np.zeros((2, 32, 32, 3), np.uint8), r"uint8 \[2, 32, 32, 3\]"),
    (np.zeros((2, 3072), np.float32), r"float32 \[2, 3072\]"),
    (np.zeros(3072, np.uint8), r"uint8 \[3072\]"),
    ([0] * 3072, "list"),
])
def test_wrong_data_array(tmp_path, data, shown):
    folder, _ = write_cifar10(tmp_path)
    _dump(folder / "data_batch_2", {b"data": data, b"labels": [0, 1]}, 4)
    with pytest.raises(UserError, match=re.escape(str(folder / "data_batch_2")) + f": 'data' is {shown}; "
                       r"official CIFAR batches hold a uint8 \[N, 3072\] array"):
        load_cifar_python(folder, 10)


def test_label_count_mismatch(tmp_path):
    folder, _ = write_cifar10(tmp_path)
    _dump(folder / "test_batch", {b"data": np.zeros((3, 3072), np.uint8), b"labels": [1, 2]}, "py2")
    with pytest.raises(UserError, match=re.escape(str(folder / "test_batch")) + " has 3 images but 2 labels"):
        load_cifar_python(folder, 10)


@pytest.mark.parametrize("labels, match", [
    ([0, 10], r"labels range over 0..10, but CIFAR-10 has labels 0..9"),
    ([-1, 0], r"labels range over -1..0"),
    ([b"cat", b"dog"], "flat list of integer labels"),
    ([[1], [2]], "flat list of integer labels"),
    ([1.5, 2.0], "flat list of integer labels"),
    ([1, [2, 3]], "flat list of integer labels"),
])
def test_bad_labels(tmp_path, labels, match):
    folder, _ = write_cifar10(tmp_path)
    _dump(folder / "data_batch_1", {b"data": np.zeros((2, 3072), np.uint8), b"labels": labels}, 4)
    with pytest.raises(UserError, match=match):
        load_cifar_python(folder, 10)


def test_cifar100_batch_without_fine_labels(tmp_path):
    folder, _ = write_cifar100(tmp_path)
    _dump(folder / "train", {b"data": np.zeros((1, 3072), np.uint8), b"coarse_labels": [3]}, "py2")
    with pytest.raises(UserError, match=r"has no 'fine_labels' entry \(found: coarse_labels, data\)"):
        load_cifar_python(folder, 100)


def test_meta_with_wrong_class_count(tmp_path):
    folder, _ = write_cifar10(tmp_path)
    _dump(folder / "batches.meta", {b"label_names": [b"a", b"b"]}, "py2")
    with pytest.raises(UserError, match="'label_names' should list 10 class names, found 2"):
        load_cifar_python(folder, 10)


def test_batch_that_is_not_a_dict(tmp_path):
    folder, _ = write_cifar10(tmp_path)
    (folder / "data_batch_4").write_bytes(pickle.dumps([1, 2, 3]))
    with pytest.raises(UserError, match=re.escape(str(folder / "data_batch_4")) + " holds a list, not the dict"):
        load_cifar_python(folder, 10)


def test_truncated_batch(tmp_path):
    folder, _ = write_cifar10(tmp_path)
    payload = (folder / "data_batch_5").read_bytes()
    (folder / "data_batch_5").write_bytes(payload[:100])
    with pytest.raises(UserError, match=re.escape(str(folder / "data_batch_5")) + " is not a valid pickle"):
        load_cifar_python(folder, 10)


class _OpenGadget:
    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        return builtins.open, (self.target, "w")


@pytest.mark.parametrize("victim", ["batches.meta", "data_batch_3", "test_batch"])
def test_malicious_batch_is_refused_and_runs_nothing(tmp_path, victim):
    folder, _ = write_cifar10(tmp_path)
    target = tmp_path / "pwned"
    (folder / victim).write_bytes(pickle.dumps({b"data": np.zeros((1, 3072), np.uint8), b"labels": [0],
                                                b"label_names": _OpenGadget(str(target))}, protocol=2))
    with pytest.raises(UserError, match=re.escape(str(folder / victim)) + ": refused.*io.open"):
        load_cifar_python(folder, 10)
    assert not target.exists()
    assert not os.path.exists(os.path.join(os.getcwd(), "pwned"))
