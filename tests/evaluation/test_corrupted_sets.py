"""Corrupted-set loaders on small files written in the official layouts (CIFAR-10-C, ImageNet-C, TFDS)."""

import os

import numpy as np
import pytest
import tensorflow as tf

from ar2_tf.errors import UserError
from ar2_tf.evaluation import corrupted_sets
from tests.evaluation.corrupted_files import write_cifar_c


def _collect(dataset):
    images, labels = zip(*dataset.as_numpy_iterator())
    return np.concatenate(images), np.concatenate(labels)


def test_cifar_c_folder_returns_each_severity_slice(tmp_path):
    stacks, labels = write_cifar_c(tmp_path, per_severity=6)
    source = corrupted_sets.open_corrupted_source(str(tmp_path), clean_split=None, dataset="cifar10",
                                                  params="cifar")
    assert isinstance(source, corrupted_sets.NumpyCSource)
    images, got = _collect(source.batches("fog", 3, batch_size=4))
    np.testing.assert_array_equal(images, stacks["fog"][12:18])
    np.testing.assert_array_equal(got, labels)
    assert got.dtype == np.int64


def test_cifar_c_labels_may_be_given_once(tmp_path):
    stacks, labels = write_cifar_c(tmp_path, per_severity=5, labels_per_severity=True)
    images, got = _collect(corrupted_sets.NumpyCSource(str(tmp_path), limit=3).batches("fog", 5, 2))
    np.testing.assert_array_equal(images, stacks["fog"][20:23])
    np.testing.assert_array_equal(got, labels[:3])


def test_cifar_c_missing_file_names_the_file_and_what_exists(tmp_path):
    write_cifar_c(tmp_path, corruption_names=("fog", "snow"))
    with pytest.raises(UserError, match=r"frost\.npy.* is missing \(found: fog, snow\)"):
        corrupted_sets.NumpyCSource(str(tmp_path)).batches("frost", 1, 4)


def test_cifar_c_label_image_count_mismatch(tmp_path):
    write_cifar_c(tmp_path, per_severity=6)
    np.save(os.path.join(tmp_path, "labels.npy"), np.zeros(29, np.uint8))
    with pytest.raises(UserError, match="label/image count mismatch: .* 29 labels .* 30 images"):
        corrupted_sets.NumpyCSource(str(tmp_path)).batches("fog", 1, 4)


def test_cifar_c_incomplete_stack(tmp_path):
    np.save(os.path.join(tmp_path, "fog.npy"), np.zeros((7, 4, 4, 3), np.uint8))
    np.save(os.path.join(tmp_path, "labels.npy"), np.zeros(7, np.uint8))
    with pytest.raises(UserError, match="not a multiple of 5"):
        corrupted_sets.NumpyCSource(str(tmp_path)).batches("fog", 1, 4)


def test_cifar_c_truncated_or_other_size_files_are_refused_by_name(tmp_path):
    write_cifar_c(tmp_path, corruption_names=("fog", "snow"))
    whole = (tmp_path / "snow.npy").read_bytes()
    (tmp_path / "snow.npy").write_bytes(whole[:len(whole) // 2])  # an interrupted download
    with pytest.raises(UserError, match=r"snow\.npy' is truncated or not a NumPy \.npy array .*download it again"):
        corrupted_sets.NumpyCSource(str(tmp_path)).batches("snow", 1, 4)
    with pytest.raises(UserError, match=r"fog\.npy' holds 8x8 images but the clean test images are 16x16"):
        corrupted_sets.NumpyCSource(str(tmp_path), image_shape=(16, 16)).batches("fog", 1, 4)


def test_unknown_corruption_is_a_user_error(tmp_path):
    write_cifar_c(tmp_path)
    with pytest.raises(UserError, match="unknown corruption 'fogg'"):
        corrupted_sets.NumpyCSource(str(tmp_path)).batches("fogg", 1, 4)


def _write_imagenet_c(root, classes, per_class=2, corruption="snow", severities=(1, 2)):
    rng = np.random.default_rng(1)
    written = {}
    for severity in severities:
        for name in classes:
            folder = os.path.join(root, corruption, str(severity), name)
            os.makedirs(folder)
            for i in range(per_class):
                image = rng.integers(0, 256, (12, 12, 3), dtype=np.uint8)
                path = os.path.join(folder, f"img_{i}.JPEG")
                tf.io.write_file(path, tf.io.encode_jpeg(image))
                written[path] = name
    return written


def test_imagenet_c_folder_maps_class_folders_to_the_datasets_labels(tmp_path):
    _write_imagenet_c(tmp_path, ("n01", "n02"))
    # the dataset's class order decides the labels, not the folder listing
    source = corrupted_sets.open_corrupted_source(str(tmp_path), clean_split=None, dataset="imagenet",
                                                  class_names=("n02", "n01"), params="imagenet")
    assert isinstance(source, corrupted_sets.ImageNetCSource)
    images, labels = _collect(source.batches("snow", 2, batch_size=3))
    assert images.shape == (4, 12, 12, 3) and images.dtype == np.uint8
    np.testing.assert_array_equal(labels, [0, 0, 1, 1])
    expected = tf.io.decode_jpeg(tf.io.read_file(os.path.join(tmp_path, "snow", "2", "n02", "img_0.JPEG")))
    np.testing.assert_array_equal(images[0], expected.numpy())
    resized, _ = _collect(corrupted_sets.ImageNetCSource(str(tmp_path), image_size=8, limit=3).batches("snow", 1, 8))
    assert resized.shape == (3, 8, 8, 3)


def test_imagenet_c_missing_severity_folder(tmp_path):
    _write_imagenet_c(tmp_path, ("n01",), severities=(1,))
    with pytest.raises(UserError, match=r"snow/3' is missing"):
        corrupted_sets.ImageNetCSource(str(tmp_path)).batches("snow", 3, 4)


def test_an_imagenet_c_file_that_does_not_decode_fails_its_severity_by_name(tmp_path):
    from ar2_tf.evaluation.multi_model import ErrorCounter, evaluate_cells
    from tests.helpers import tiny_classifier

    written = _write_imagenet_c(tmp_path, ("n01", "n02"))
    broken = [path for path in written if os.path.join("snow", "2", "n02") in path][0]
    with open(broken, "wb") as file:
        file.write(b"<html>404</html>")  # a mirror's error page saved as the image
    source = corrupted_sets.ImageNetCSource(str(tmp_path))
    assert source.diagnose("snow", 1) is None
    results = []
    classifier = tiny_classifier(2, (12, 12, 3))  # the counter holds it weakly
    counter = ErrorCounter(classifier, "unit")
    evaluate_cells({"model": counter}, source, corruptions=("snow",), severities=(1, 2), batch_size=2, done={},
                   on_result=lambda *result: results.append(result), verbose=0)
    assert [result[2] for result in results] == [1, None]  # severity 1 measured, then severity 2 failed
    assert results[1][3].startswith(f"1 file(s) of snow severity 2 do not decode (e.g. {broken!r})")


def test_tfds_source_always_names_the_config(monkeypatch):
    import tensorflow_datasets as tfds

    requested = []
    load = tfds.load
    monkeypatch.setattr(tfds, "load", lambda name, **kw: requested.append(name) or load(name, **kw))
    with tfds.testing.mock_data(num_examples=5):
        source = corrupted_sets.open_corrupted_source("tfds", clean_split=None, dataset="cifar10", params="cifar")
        images, labels = _collect(source.batches("fog", 3, batch_size=2))
    assert requested == ["cifar10_corrupted/fog_3"]
    assert images.shape == (5, 32, 32, 3) and images.dtype == np.uint8 and labels.dtype == np.int64


def test_tfds_has_no_cifar100_sets():
    with pytest.raises(UserError, match="cifar10 only"):
        corrupted_sets.open_corrupted_source("tfds", clean_split=None, dataset="cifar100", params="cifar")


def test_corrupted_dir_that_is_neither_layout(tmp_path):
    with pytest.raises(UserError, match="neither"):
        corrupted_sets.open_corrupted_source(str(tmp_path), clean_split=None, dataset="cifar10", params="cifar")
