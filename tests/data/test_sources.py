"""Dataset sources: demo, .npz (both layouts of ../shared), image folders, and their errors."""

import io
import re

import numpy as np
import pytest
from PIL import Image

from ar2_tf.data import demo
from ar2_tf.data import sources as datasets
from ar2_tf.errors import UserError


def first(split, count):
    return [(x.numpy(), int(y)) for x, y in split.take(count)]


def test_demo_is_deterministic_and_balanced():
    source = datasets.load_dataset("demo", train_size=120, test_size=30)
    assert source.class_names == demo.CLASS_NAMES and source.image_shape == (32, 32)
    assert (source.train_size, source.test_size) == (120, 30)
    again = datasets.load_dataset("demo", train_size=120, test_size=30)
    np.testing.assert_array_equal(first(source.train, 1)[0][0], first(again.train, 1)[0][0])
    _, labels = demo.make_images(600, 0)
    assert np.bincount(labels).tolist() == [100] * 6


def test_npz_pixel_arrays_and_subsets(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "d.npz"
    np.savez(path, x_train=rng.integers(0, 256, (20, 32, 32, 3), dtype=np.uint8), y_train=np.arange(20) % 10,
             x_test=rng.integers(0, 256, (6, 32, 32, 3), dtype=np.uint8), y_test=np.arange(6),
             class_names=np.array([f"c{i}" for i in range(10)]))
    source = datasets.load_dataset("cifar10", str(path), train_size=8)
    assert (source.train_size, source.test_size, source.class_names[3]) == (8, 6, "c3")
    assert first(source.test, 6)[5][1] == 5


def write_jpeg_npz(path, images, broken=()):
    """The ../shared JPEG layout: both splits hold `images`; positions in `broken` hold bytes that are no JPEG."""
    blobs = []
    for index, image in enumerate(images):
        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, format="JPEG", quality=95)
        blobs.append(np.frombuffer(b"not a jpeg" if index in broken else buffer.getvalue(), np.uint8))
    offsets = np.concatenate([[0], np.cumsum([len(b) for b in blobs])])
    np.savez(path, train_jpeg_bytes=np.concatenate(blobs), train_offsets=offsets, y_train=np.arange(len(images)),
             test_jpeg_bytes=np.concatenate(blobs), test_offsets=offsets, y_test=np.arange(len(images)))
    return str(path)


def test_npz_jpeg_bytes_layout(tmp_path):
    images = demo.make_images(3, seed=1)[0]  # smooth images survive JPEG closely
    path = write_jpeg_npz(tmp_path / "jpeg.npz", images)
    source = datasets.load_dataset("cifar10", str(path))
    decoded = np.stack([x for x, _ in first(source.train, 3)])
    assert decoded.shape == (3, 32, 32, 3)
    distance = np.abs(decoded[:, None].astype(int) - images[None]).mean(axis=(2, 3, 4))
    assert distance.diagonal().max() < 8 and (distance.argmin(axis=1) == np.arange(3)).all()  # in order


def test_npz_jpeg_subsets_decode_only_their_images(tmp_path, monkeypatch):
    from ar2_tf.data import npz_arrays

    images = demo.make_images(10, seed=2)[0]  # labels 0-9: one image per label
    path = write_jpeg_npz(tmp_path / "jpeg.npz", images)
    whole = datasets.load_dataset("cifar10", path)
    by_label = {label: image for image, label in first(whole.test, 10)}
    decoded = []
    decode = npz_arrays.JpegImages._decode
    monkeypatch.setattr(npz_arrays.JpegImages, "_decode", lambda self, index: decoded.append(len(index)) or
                        decode(self, index))
    subset = datasets.load_dataset("cifar10", path, train_size=3, test_size=2, seed=1)
    assert (subset.train_size, subset.test_size) == (3, 2)
    assert decoded == []  # taken from the whole splits the first load decoded (the file is cached)

    npz_arrays._load.cache_clear()
    decoded.clear()
    subset = datasets.load_dataset("cifar10", path, train_size=3, test_size=2, seed=1)
    assert max(decoded) <= 3 and sum(decoded) <= 3 + 2 + 2  # the subsets and one image per split for the size
    for image, label in first(subset.test, 2):
        np.testing.assert_array_equal(image, by_label[label])  # the same pixels as the whole split's


def test_an_npz_jpeg_that_does_not_decode_is_one_clear_error(tmp_path):
    path = write_jpeg_npz(tmp_path / "jpeg.npz", demo.make_images(4, seed=3)[0], broken=(2,))
    with pytest.raises(UserError, match=r"jpeg.npz \(train split\): an image could not be decoded as JPEG") as error:
        datasets.load_dataset("cifar10", path)
    assert "\n" not in str(error.value)


def test_an_npz_file_read_again_is_read_once_until_it_changes(tmp_path, monkeypatch):
    from ar2_tf.data import npz_arrays

    path = tmp_path / "d.npz"
    images = np.zeros((4, 8, 8, 3), np.uint8)
    np.savez(path, x_train=images, y_train=np.arange(4), x_test=images[:2], y_test=np.arange(2))
    reads = []
    monkeypatch.setattr(npz_arrays.np, "load", lambda *a, **k: reads.append(a[0]) or np.lib.npyio.NpzFile(a[0]))
    first_read = npz_arrays.load_npz(str(path), 10)
    assert npz_arrays.load_npz(str(path), 10)["x_train"] is first_read["x_train"] and len(reads) == 1
    with pytest.raises(ValueError, match="read-only"):
        first_read["x_train"][0, 0, 0, 0] = 1  # shared: no caller can change another's data
    np.savez(path, x_train=images + 1, y_train=np.arange(4), x_test=images[:2], y_test=np.arange(2),
             class_names=np.array([f"c{i}" for i in range(10)]))  # another size, whatever the clock's resolution
    assert npz_arrays.load_npz(str(path), 10)["x_train"].max() == 1 and len(reads) == 2  # a new file is read


def test_training_and_evaluation_files_read_in_turn_are_each_read_once(tmp_path, monkeypatch):
    from ar2_tf.data import npz_arrays

    paths = [str(tmp_path / f"{name}.npz") for name in ("train", "eval")]
    for value, path in enumerate(paths):
        images = np.full((4, 8, 8, 3), value, np.uint8)
        np.savez(path, x_train=images, y_train=np.arange(4), x_test=images[:2], y_test=np.arange(2))
    reads = []
    monkeypatch.setattr(npz_arrays.np, "load", lambda *a, **k: reads.append(a[0]) or np.lib.npyio.NpzFile(a[0]))
    for _ in range(3):  # a benchmark's runs: each loads its --data-dir, then its --eval-data-dir
        assert [npz_arrays.load_npz(path, 10)["x_test"].max() for path in paths] == [0, 1]
    assert sorted(reads) == sorted(paths)


def write_tree(root, classes=("cat", "dog"), per_class=2, size=40):
    rng = np.random.default_rng(0)
    for split in ("train", "val"):
        for name in classes:
            folder = root / split / name
            folder.mkdir(parents=True)
            for i in range(per_class):
                Image.fromarray(rng.integers(0, 256, (size, size + 10, 3), dtype=np.uint8)).save(folder / f"{i}.png")
    return root


def test_image_folder_tree_with_center_crop(tmp_path):
    root = write_tree(tmp_path / "tree")
    (root / "train" / "cat" / "notes.txt").write_text("not an image")
    with pytest.warns(UserWarning, match="skipped 1 non-image file"):
        source = datasets.load_dataset("folder", str(root), image_size=24)
    assert source.class_names == ("cat", "dog") and (source.train_size, source.test_size) == (4, 4)
    images = first(source.train, 4)
    assert images[0][0].shape == (24, 24, 3) and [y for _, y in images] == [0, 0, 1, 1]


def test_image_file_that_is_not_an_image_is_skipped_and_named(tmp_path):
    root = write_tree(tmp_path / "tree")
    (root / "train" / "dog" / "broken.jpg").write_bytes(b"<html>404</html>")
    with pytest.warns(UserWarning, match=r"skipped 1 non-image file\(s\) .*broken\.jpg"):
        source = datasets.load_dataset("folder", str(root), image_size=24)
    assert source.train_size == 4 and len(first(source.train, 5)) == 4


@pytest.mark.parametrize("dataset, setup, message", [
    ("mnist", None, "unknown dataset 'mnist'"),
    ("cifar10", "missing", "does not exist"),
    ("folder", None, "needs `data_dir`"),
    ("folder", "empty-train", "no class folders"),
    ("folder", "no-images", "holds no image files"),
])
def test_dataset_errors(tmp_path, dataset, setup, message):
    data_dir = None
    if setup == "missing":
        data_dir = str(tmp_path / "nope")
    elif setup == "empty-train":
        (tmp_path / "train").mkdir()
        data_dir = str(tmp_path)
    elif setup == "no-images":
        (tmp_path / "train" / "a").mkdir(parents=True)
        (tmp_path / "val" / "a").mkdir(parents=True)
        data_dir = str(tmp_path)
    with pytest.raises(UserError, match=message):
        datasets.load_dataset(dataset, data_dir)


def _empty_test_layout(tmp_path, layout):
    """(--dataset, --data-dir, --eval-data-dir or None, the file whose test split is empty) of 3 classes at 16 px."""
    rng = np.random.default_rng(0)
    images, labels = rng.integers(0, 256, (24, 16, 16, 3), dtype=np.uint8), np.arange(24) % 3
    data = str(tmp_path / "data.npz")
    if layout == "empty x_test":
        np.savez(data, x_train=images, y_train=labels, x_test=images[:0], y_test=labels[:0])
    elif layout == "one image per class":  # no class has two images: no fifth is held out
        np.savez(data, x=images[:3], y=labels[:3])
    elif layout == "empty eval file":
        np.savez(data, x_train=images, y_train=labels)
        tests = str(tmp_path / "tests.npz")
        np.savez(tests, x_test=images[:0], y_test=labels[:0])
        return "npz", data, tests, tests
    else:  # a CIFAR-layout .npz with an empty test split
        images, labels = rng.integers(0, 256, (40, 32, 32, 3), dtype=np.uint8), np.arange(40) % 10
        np.savez(data, x_train=images, y_train=labels, x_test=images[:0], y_test=labels[:0])
        return "cifar10", data, None, data
    return "npz", data, None, data


@pytest.mark.parametrize("layout", ["empty x_test", "one image per class", "empty eval file", "cifar10 empty x_test"])
def test_an_empty_test_split_is_one_line_from_every_command_before_any_work(tmp_path, capsys, layout):
    from ar2_tf import benchmark, evaluate, train
    from ar2_tf.cli import run_main
    from tests.helpers import tiny_classifier

    dataset, data, tests, empty = _empty_test_layout(tmp_path, layout)
    model = str(tmp_path / "model.keras")
    tiny_classifier(num_classes=10 if dataset == "cifar10" else 3,
                    input_shape=(32, 32, 3) if dataset == "cifar10" else (16, 16, 3)).save(model)
    flags = ["--dataset", dataset, "--data-dir", data, "--model", model, "--preset", "tiny", "--batch-size", "2",
             "--verbose", "0"] + (["--eval-data-dir", tests] if tests else [])
    said = f"the test split of {empty!r} holds no images; "
    assert run_main(train.main, flags + ["--out", str(tmp_path / "run")]) == 2
    error = capsys.readouterr().err
    assert said in error and "--eval-data-dir" in error and len(error.strip().splitlines()) == 1
    assert not (tmp_path / "run" / "before.json").exists()  # refused before the model was evaluated or trained
    assert run_main(benchmark.main, flags + ["--methods", "finetune", "--corruptions", "fog",
                                             "--out", str(tmp_path / "bench")]) == 2
    error = capsys.readouterr().err
    assert said in error and len(error.strip().splitlines()) == 1
    assert run_main(evaluate.main, ["--model", model, "--dataset", dataset, "--data-dir", empty, "--corruptions",
                                    "fog", "--severities", "3", "--verbose", "0"]) == 2
    error = capsys.readouterr().err
    assert said in error and "pass --data-dir with test images" in error and len(error.strip().splitlines()) == 1


@pytest.mark.parametrize("layout, fix", [
    ("empty x_test", "put test images in its x_test and y_test (without them, a fifth of each class"),
    ("cifar10 empty x_test", "put test images in its x_test and y_test, or"),
])
def test_the_empty_test_split_message_names_the_fix_for_its_data(tmp_path, layout, fix):
    dataset, data, _, _ = _empty_test_layout(tmp_path, layout)
    with pytest.raises(UserError, match=re.escape(fix)):
        datasets.check_test_split(datasets.load_dataset(dataset, data), data, "pass --eval-data-dir with test images")


def test_a_flat_folder_with_one_image_per_class_has_no_test_split_and_says_how_to_add_one(tmp_path):
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / name / "0.png")
    source = datasets.load_dataset("folder", str(tmp_path), image_size=8)
    assert source.test_size == 0
    with pytest.raises(UserError, match="add a val/ folder of test images to it"):
        datasets.check_test_split(source, str(tmp_path), "pass --eval-data-dir with test images")


@pytest.mark.parametrize("keys, message", [
    (("x_train", "y_train", "x_test"), "holds x_test but no y_test; its test split needs x_test, y_test"),
    (("x_train", "y_train", "test_jpeg_bytes", "y_test"), "holds test_jpeg_bytes but no test_offsets; its test "
                                                          "split needs test_jpeg_bytes, test_offsets, y_test"),
    (("x_train_exact", "train_exact_index", "y_test"), "holds x_train_exact but no y_train_fine"),
])
def test_a_cifar_npz_split_missing_an_array_names_it(tmp_path, keys, message):
    path = str(tmp_path / "cifar.npz")
    np.savez(path, **{key: np.zeros((4, 32, 32, 3), np.uint8) if key.startswith("x") else np.zeros(4, np.int64)
                      for key in keys})
    with pytest.raises(UserError, match=re.escape(message)):
        datasets.load_dataset("cifar10", path)
