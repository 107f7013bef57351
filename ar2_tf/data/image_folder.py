"""Image-folder trees, in two layouts:

- split (the ImageNet layout): `ROOT/train/<class>/<image>` and `ROOT/val/<class>/<image>`. Classes are the
  sub-folders of `train/`, sorted by name; the test split is `val/`, `validation/` or `test/` and must use
  the same class folders.
- flat (Keras' `image_dataset_from_directory` layout): `ROOT/<class>/<image>`, classes sorted by name. A
  `TEST_FRACTION` of each class's images, drawn with the fixed `HELD_OUT_SEED`, is held out as the test split
  (`held_out`), the rest trains. The draw is the tree's, not the run's `seed`: a run trained with one seed
  and evaluated with another must not test on its own training images.

In both, folders whose name starts with "." (`.ipynb_checkpoints`, `.git`) are not classes, as in Keras.

Before a run starts, every image file it will use (after the `train_size` / `test_size` subset) is
decoded once (`ar2_tf.data.image_scan`): files that do not decode (corrupt, truncated, empty, unreadable)
and files whose extension is not an image format (.jpg, .jpeg, .png, .bmp, .gif) are skipped with one
warning per split that counts and names them, or refused with a `UserError` under `strict`
(`strict_images`), so a broken download never stops a run midway nor is trained on silently. Gray,
gray+alpha, RGBA and palette images are decoded to RGB: gray repeated in the three channels, alpha dropped.
"""

import os
import warnings

import numpy as np
import tensorflow as tf

from ar2_tf.data import image_scan
from ar2_tf.errors import UserError
from ar2_tf.safe_paths import safe_name

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif")
TEST_FOLDERS = ("val", "validation", "test")
TEST_FRACTION = 0.2  # of each class of a flat tree, held out as the test split
HELD_OUT_SEED = 0  # the draw of that part: fixed, whatever a run's `seed`


def looks_like_tree(root) -> bool:
    """Whether `root` is an image-folder tree of either layout (module docstring)."""
    return os.path.isdir(os.path.join(root, "train")) or _is_flat_tree(root)


def _class_folders(folder):
    """The sub-folders of `folder` that can be classes: not hidden ones (Keras' rule)."""
    return [entry for entry in os.scandir(folder) if entry.is_dir() and not entry.name.startswith(".")]


def _is_flat_tree(root) -> bool:
    """Some class folder of `root` holds image files itself."""
    return any(any(child.is_file() and child.name.lower().endswith(IMAGE_EXTENSIONS)
                   for child in os.scandir(entry.path)) for entry in _class_folders(root))


def is_flat(root) -> bool:
    """Whether `root` is a flat tree (`<class>/*` without train/): its test split is a held-out part of it."""
    return not os.path.isdir(os.path.join(root, "train")) and _is_flat_tree(root)


def _test_folder(root):
    for name in TEST_FOLDERS:
        if os.path.isdir(os.path.join(root, name)):
            return os.path.join(root, name)
    raise UserError(f"{root!r} has train/ but no test split; add one of {', '.join(TEST_FOLDERS)}/ with the same "
                    "class folders.")


def list_classes(split_dir) -> tuple:
    classes = tuple(sorted(safe_name(entry.name, "class folder name") for entry in _class_folders(split_dir)))
    if not classes:
        raise UserError(f"{split_dir!r} has no class folders; expected one sub-folder of images per class.")
    return classes


def _walk(split_dir, classes):
    """(paths, labels) of the files with an image extension, and the paths of the other files."""
    paths, labels, other = [], [], []
    for label, name in enumerate(classes):
        folder = os.path.join(split_dir, name)
        if not os.path.isdir(folder):
            raise UserError(f"class folder {folder!r} is missing; every split needs the classes of train/.")
        for entry in sorted(os.scandir(folder), key=lambda e: e.name):
            if not entry.is_file():
                continue
            if entry.name.lower().endswith(IMAGE_EXTENSIONS):
                paths.append(entry.path)
                labels.append(label)
            else:
                other.append(entry.path)
    if not paths:
        raise UserError(f"{split_dir!r} holds no image files ({', '.join(IMAGE_EXTENSIONS)}).")
    return np.array(paths), np.array(labels, np.int64), other


def list_files(split_dir, classes):
    """Returns (paths, labels) of the image-extension files, warning once about the other files.

    Lists only, without decoding (ImageNet-C folders: 75 x 50,000 files); `load_split` also scans.
    """
    paths, labels, other = _walk(split_dir, classes)
    if other:
        warnings.warn(f"skipped {len(other)} non-image file(s) in {split_dir}, e.g. {other[:3]}", stacklevel=2)
    return paths, labels


def _decode(path, label):
    return image_scan.decode(tf.io.read_file(path)), label


def load_split(split_dir, classes, size=None, seed=0, strict=False):
    """(dataset of (uint8 [H, W, 3], int64 label), count) of a split's decodable images.

    Takes the seeded random subset of `size` files first, then decodes only those
    (a small CPU run on ImageNet does not decode 1.28 million files).
    """
    return _load_files(split_dir, *_walk(split_dir, classes), size, seed, strict)


def held_out(labels, seed=HELD_OUT_SEED) -> np.ndarray:
    """bool [N]: the test images of a flat tree, a seeded `TEST_FRACTION` of each class (rounded, at least one
    of a class with two images or more); `load_tree` draws it with `HELD_OUT_SEED`, the same for every run."""
    rng = np.random.default_rng(seed)
    mask = np.zeros(len(labels), bool)
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        count = max(int(round(TEST_FRACTION * len(members))), 1) if len(members) > 1 else 0
        mask[rng.choice(members, count, replace=False)] = True
    return mask


def _load_files(where, paths, labels, other, size, seed, strict):
    if size is not None and size < len(paths):
        index = np.sort(np.random.default_rng(seed).choice(len(paths), size, replace=False))
        paths, labels = paths[index], labels[index]
    bad = image_scan.undecodable(paths)
    keep = ~np.isin(paths, bad)
    image_scan.check_split(where, bad, other, int(keep.sum()), strict)
    paths, labels = paths[keep], labels[keep]
    dataset = tf.data.Dataset.from_tensor_slices((paths, labels))
    return dataset.map(_decode, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True), len(paths)


def load_tree(root, train_size=None, test_size=None, seed=0, strict=False):
    """Returns (train, test, class_names, (train_count, test_count)) for an image-folder tree.

    `strict`: refuse a split holding files that are not decodable images instead of skipping them.
    """
    train_dir = os.path.join(root, "train")
    if not os.path.isdir(train_dir):  # flat: a held-out part of each class tests
        classes = list_classes(root)
        paths, labels, other = _walk(root, classes)
        testing = held_out(labels)
        train, train_count = _load_files(f"{root} (training part)", paths[~testing], labels[~testing], other,
                                         train_size, seed, strict)
        test, test_count = _load_files(f"{root} (held-out {TEST_FRACTION:.0%} test part)", paths[testing],
                                       labels[testing], [], test_size, seed, strict)
        return train, test, classes, (train_count, test_count)
    classes = list_classes(train_dir)
    train, train_count = load_split(train_dir, classes, train_size, seed, strict)
    test, test_count = load_split(_test_folder(root), classes, test_size, seed, strict)
    return train, test, classes, (train_count, test_count)
