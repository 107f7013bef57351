"""Image-folder trees (the ImageNet layout): `ROOT/train/<class>/<image>` and `ROOT/val/<class>/<image>`.

Classes are the sub-folders of `train/`, sorted by name; the test split is
`val/`, `validation/` or `test/` and must use the same class folders. Files
whose extension is not an image format (.jpg, .jpeg, .png, .bmp, .gif) are
skipped with one warning that counts and names them; a file with an image
extension whose bytes are not an image stops the pipeline with its path in
the error, so a broken download is never trained on silently.
"""

import os
import warnings

import numpy as np
import tensorflow as tf

from ar2_tf.errors import UserError
from ar2_tf.paths import safe_name

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif")
TEST_FOLDERS = ("val", "validation", "test")
# JPEG, PNG, GIF and BMP signatures, checked in the graph before decoding.
_MAGIC = (b"\xff\xd8\xff", b"\x89PNG", b"GIF8", b"BM")


def looks_like_tree(root) -> bool:
    return os.path.isdir(os.path.join(root, "train"))


def _test_folder(root):
    for name in TEST_FOLDERS:
        if os.path.isdir(os.path.join(root, name)):
            return os.path.join(root, name)
    raise UserError(f"{root!r} has train/ but no test split; add one of {', '.join(TEST_FOLDERS)}/ with the same "
                    "class folders.")


def list_classes(split_dir) -> tuple:
    classes = tuple(sorted(safe_name(entry.name, "class folder name")
                           for entry in os.scandir(split_dir) if entry.is_dir()))
    if not classes:
        raise UserError(f"{split_dir!r} has no class folders; expected one sub-folder of images per class.")
    return classes


def list_files(split_dir, classes):
    """Returns (paths, labels) of the image files, warning once about skipped non-image files."""
    paths, labels, skipped = [], [], []
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
                skipped.append(entry.path)
    if skipped:
        warnings.warn(f"skipped {len(skipped)} non-image file(s) in {split_dir}, e.g. {skipped[:3]}", stacklevel=2)
    if not paths:
        raise UserError(f"{split_dir!r} holds no image files ({', '.join(IMAGE_EXTENSIONS)}).")
    return np.array(paths), np.array(labels, np.int64)


def _decode(path, label):
    contents = tf.io.read_file(path)
    head = tf.strings.substr(contents, 0, 4)
    is_image = tf.reduce_any([tf.strings.substr(head, 0, len(m)) == m for m in _MAGIC])
    check = tf.debugging.Assert(is_image, ["not an image file (unknown format):", path])
    with tf.control_dependencies([check]):
        image = tf.io.decode_image(contents, channels=3, expand_animations=False)
    return image, label


def _dataset(paths, labels, size, seed):
    if size is not None and size < len(paths):
        index = np.sort(np.random.default_rng(seed).choice(len(paths), size, replace=False))
        paths, labels = paths[index], labels[index]
    dataset = tf.data.Dataset.from_tensor_slices((paths, labels))
    return dataset.map(_decode, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True), len(paths)


def load_tree(root, train_size=None, test_size=None, seed=0):
    """Returns (train, test, class_names, (train_count, test_count)) for an image-folder tree."""
    train_dir = os.path.join(root, "train")
    classes = list_classes(train_dir)
    train, train_count = _dataset(*list_files(train_dir, classes), train_size, seed)
    test, test_count = _dataset(*list_files(_test_folder(root), classes), test_size, seed)
    return train, test, classes, (train_count, test_count)
