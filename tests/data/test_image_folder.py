"""Image folders as users have them: corrupt, truncated, empty and non-image files are found before a run
starts (skipped with one warning per split, or refused under --strict-images), and gray, gray+alpha, RGBA and
palette images are decoded to RGB."""

import json
import os
import subprocess
import sys
import warnings

import numpy as np
import pytest
from PIL import Image

from ar2_tf import train
from ar2_tf.cli import run_main
from ar2_tf.data import image_folder
from ar2_tf.data.sources import load_dataset
from ar2_tf.errors import UserError
from tests.helpers import ROOT, tiny_classifier

SIZE = 32
GRAY = 77
RGB = (10, 200, 30)


def gradient(seed):
    """A smooth RGB image (JPEG keeps it within a few levels), different for each seed."""
    y, x = np.mgrid[0:SIZE, 0:SIZE]
    return np.stack([(x * 7 + seed * 40) % 256, (y * 5 + seed * 20) % 256, (x + y) * 3 % 256], -1).astype(np.uint8)


def a_jpeg(path, seed):
    Image.fromarray(gradient(seed)).save(path, "JPEG", quality=95)
    return str(path)


def write_messy_tree(root):
    """train/cat: 2 good, 3 bad, 1 text file; train/dog: 4 good (gray, gray+alpha, RGBA, palette), 2 bad;
    val/: 1 good per class and 1 corrupt JPEG. Returns ({path: (expected RGB pixels, tolerance)}, bad paths):
    PNGs (and the flat gray JPEG) decode exactly, gradient JPEGs within 6 levels on average."""
    folders = {split: {name: root / split / name for name in ("cat", "dog")} for split in ("train", "val")}
    for split in folders.values():
        for folder in split.values():
            folder.mkdir(parents=True)
    cat, dog = folders["train"]["cat"], folders["train"]["dog"]
    gray = np.full((SIZE, SIZE, 3), GRAY, np.uint8)
    good = {a_jpeg(cat / "a_rgb.jpg", 0): (gradient(0), 6)}
    Image.fromarray(gray[..., 0], "L").save(cat / "b_gray.png")
    good[str(cat / "b_gray.png")] = (gray, 0)
    whole = (cat / "a_rgb.jpg").read_bytes()
    (cat / "c_truncated.jpg").write_bytes(whole[:len(whole) // 2])  # a download cut half-way
    (cat / "d_random.jpg").write_bytes(np.random.default_rng(0).bytes(600))
    (cat / "e_empty.png").write_bytes(b"")
    (cat / "notes.txt").write_text("not an image")
    Image.fromarray(gray[..., 0], "L").save(dog / "a_gray.jpg", quality=100)  # a 1-channel JPEG
    good[str(dog / "a_gray.jpg")] = (gray, 0)
    gray_alpha = np.stack([np.full((SIZE, SIZE), GRAY, np.uint8), np.full((SIZE, SIZE), 40, np.uint8)], -1)
    Image.fromarray(gray_alpha, "LA").save(dog / "b_gray_alpha.png")
    good[str(dog / "b_gray_alpha.png")] = (gray, 0)
    rgba = np.dstack([np.full((SIZE, SIZE, 3), RGB, np.uint8), np.zeros((SIZE, SIZE), np.uint8)])  # transparent
    Image.fromarray(rgba, "RGBA").save(dog / "c_rgba.png")
    good[str(dog / "c_rgba.png")] = (np.full((SIZE, SIZE, 3), RGB, np.uint8), 0)
    palette = Image.fromarray(gradient(1)).convert("P")
    palette.save(dog / "d_palette.png")
    good[str(dog / "d_palette.png")] = (np.asarray(palette.convert("RGB")), 0)
    png = (dog / "d_palette.png").read_bytes()
    (dog / "e_no_end.png").write_bytes(png[:-12])  # IEND chunk missing: PIL opens it, TensorFlow refuses it
    (dog / "f_html.png").write_bytes(b"<html>404 Not Found</html>")
    for seed, name in enumerate(("cat", "dog")):
        good[a_jpeg(folders["val"][name] / "good.jpg", seed + 2)] = (gradient(seed + 2), 6)
    (folders["val"]["cat"] / "broken.jpg").write_bytes(whole[:100])
    bad = {"train": [cat / "c_truncated.jpg", cat / "d_random.jpg", cat / "e_empty.png", cat / "notes.txt",
                     dog / "e_no_end.png", dog / "f_html.png"], "val": [folders["val"]["cat"] / "broken.jpg"]}
    return good, bad


@pytest.fixture
def messy(tmp_path):
    good, bad = write_messy_tree(tmp_path / "tree")
    return str(tmp_path / "tree"), good, bad


def load_recording_warnings(root, **kwargs):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        loaded = image_folder.load_tree(root, **kwargs)
    return loaded, [str(w.message) for w in caught if issubclass(w.category, UserWarning)]


def test_bad_files_are_skipped_with_one_warning_per_split_naming_them(messy):
    root, good, bad = messy
    (train, test, classes, counts), messages = load_recording_warnings(root)
    assert classes == ("cat", "dog") and counts == (6, 2)
    assert len(messages) == 2, messages
    for split, message in zip(("train", "val"), messages):
        assert message.startswith(f"skipped {len(bad[split])} non-image file(s) in {os.path.join(root, split)}")
        assert str(bad[split][0]) in message
    assert "5 that do not decode" in messages[0] and "1 without an image extension" in messages[0]
    images = [(image, int(label)) for split in (train, test) for image, label in split.as_numpy_iterator()]
    assert len(images) == len(good) and [label for _, label in images] == [0, 0, 1, 1, 1, 1, 0, 1]
    for (image, _), (path, (expected, tolerance)) in zip(images, good.items()):
        assert image.shape == (SIZE, SIZE, 3) and image.dtype == np.uint8, path
        assert np.abs(image.astype(int) - expected).mean() <= tolerance, path  # gray: R = G = B = 77


def test_gray_and_rgba_images_reach_the_model_as_rgb(messy):
    root, _, _ = messy
    with pytest.warns(UserWarning, match="skipped"):
        source = load_dataset("folder", root, image_size=SIZE)
    images = np.stack([image for image, _ in source.train.as_numpy_iterator()])
    assert images.shape == (6, SIZE, SIZE, 3) and images.dtype == np.uint8
    np.testing.assert_array_equal(images[1], np.full((SIZE, SIZE, 3), GRAY, np.uint8))  # b_gray.png
    np.testing.assert_array_equal(images[4], np.full((SIZE, SIZE, 3), RGB, np.uint8))  # c_rgba.png, alpha 0


def test_strict_images_refuses_and_names_a_bad_file(messy):
    root, _, bad = messy
    with pytest.raises(UserError, match="drop `strict_images`") as error:
        image_folder.load_tree(root, strict=True)
    message = str(error.value)
    assert "holds 6 file(s) that are not decodable images" in message and str(bad["train"][0]) in message
    assert "\n" not in message


def test_a_clean_tree_loads_strictly_without_warnings(tmp_path):
    for split in ("train", "val"):
        for label, name in enumerate(("cat", "dog")):
            (tmp_path / split / name).mkdir(parents=True)
            a_jpeg(tmp_path / split / name / "x.jpg", label)
    (train, _, _, counts), messages = load_recording_warnings(str(tmp_path), strict=True)
    assert counts == (2, 2) and messages == []
    assert [int(label) for _, label in train.as_numpy_iterator()] == [0, 1]


def test_a_split_with_no_decodable_image_is_refused_even_without_strict(messy):
    root, _, _ = messy
    for path in (os.path.join(root, "val", "cat", "good.jpg"), os.path.join(root, "val", "dog", "good.jpg")):
        os.remove(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # train/'s warning
        with pytest.raises(UserError, match=r"none of the 1 image file\(s\) used from .*val decodes .*broken\.jpg"):
            image_folder.load_tree(root)


def test_a_subset_is_chosen_first_and_only_its_bad_files_dropped(messy):
    root, good, _ = messy
    (train, _, _, counts), messages = load_recording_warnings(root, train_size=3, seed=1)
    # Seed 1 picks 3 of train/'s 11 image-extension files: e_empty.png, dog/a_gray.jpg and dog/d_palette.png.
    assert counts[0] == 2 and len(train) == 2
    assert messages[0].startswith("skipped 2 non-image file(s)") and "e_empty.png" in messages[0]
    assert "d_random.jpg" not in messages[0]  # not chosen, so not decoded
    palette = next(path for path in good if path.endswith("d_palette.png"))
    np.testing.assert_array_equal(list(train.as_numpy_iterator())[1][0], good[palette][0])


# --- the command line ---------------------------------------------------------------------------------------

def run_flags(root, tmp_path):
    model = str(tmp_path / "tiny.keras")
    tiny_classifier(2, (SIZE, SIZE, 3)).save(model)
    return ["--dataset", "folder", "--data-dir", root, "--model", model, "--preprocessing", "unit",
            "--image-size", str(SIZE), "--batch-size", "2", "--val-size", "0", "--preset", "tiny",
            "--corruption", "gaussian_noise", "--verbose", "0", "--out", str(tmp_path / "run")]


def test_train_cli_with_strict_images_exits_2_with_one_line(messy, tmp_path):
    root, _, bad = messy
    env = {key: value for key, value in os.environ.items() if key != "TF_CPP_MIN_LOG_LEVEL"}  # a user's start
    done = subprocess.run([sys.executable, "-m", "ar2_tf.train", *run_flags(root, tmp_path), "--strict-images"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    lines = done.stderr.splitlines()
    assert done.returncode == 2, done.stderr
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    assert lines[0].startswith(("ar2_tf: ", "error: ")) and str(bad["train"][0]) in lines[0]
    assert "drop --strict-images to skip them" in lines[0]


def test_train_cli_skips_bad_files_and_completes_a_tiny_run(messy, tmp_path):
    root, _, _ = messy
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert run_main(train.main, run_flags(root, tmp_path)) == 0
    skipped = [str(w.message) for w in caught if str(w.message).startswith("skipped ")]
    assert len(skipped) == 2 and "skipped 6 " in skipped[0] and "skipped 1 " in skipped[1]
    with open(tmp_path / "run" / "report.json") as file:
        report = json.load(file)
    assert report["train_size"] == 6 and report["input_shape"] == [SIZE, SIZE, 3]
    assert report["config"]["strict_images"] is False


def test_a_flat_tree_holds_out_a_fixed_fifth_of_each_class_for_testing(tmp_path):
    """Keras' image_dataset_from_directory layout, ROOT/<class>/<image>: no train/ and val/ to split by; a hidden
    folder is not a class, as in Keras. The held-out part is the tree's, whatever the run's seed: a run trained
    with --seed 3 and evaluated with the default 0 tests on none of its training images."""
    for name, count in (("cat", 10), ("dog", 6), ("eel", 1), (".ipynb_checkpoints", 1)):
        (tmp_path / name).mkdir()
        for index in range(count):
            a_jpeg(tmp_path / name / f"{index}.jpg", index)
    (train, test, classes, counts), messages = load_recording_warnings(str(tmp_path), strict=True)
    assert classes == ("cat", "dog", "eel") and counts == (17 - 3, 3) and messages == []
    test_labels = sorted(int(label) for _, label in test.as_numpy_iterator())
    assert test_labels == [0, 0, 1]  # 20 % of 10 cats, of 6 dogs (rounded), none of the single eel
    def images(split):  # (pixels, label): the same file index in two classes has the same pixels
        return {(x.tobytes(), int(y)) for x, y in split.as_numpy_iterator()}

    tested = images(test)
    for seed in (0, 3):
        train_again, test_again = image_folder.load_tree(str(tmp_path), seed=seed)[:2]
        assert images(test_again) == tested and not tested & images(train_again)
    other_seed = image_folder.held_out(np.repeat([0, 1, 2], [10, 6, 1]), seed=1)
    assert other_seed.sum() == 3 and not np.array_equal(other_seed, image_folder.held_out(
        np.repeat([0, 1, 2], [10, 6, 1]), seed=0))

    with pytest.raises(UserError, match="holds no image-folder tree: expected train/<class>/ and val/<class>/"):
        load_dataset("folder", str(tmp_path / "cat"))  # images, but no class folders
