"""The official CIFAR-10/100 "python version" folders, read without running pickled code.

Layouts (as extracted from the official archives at
https://www.cs.toronto.edu/~kriz/cifar.html):

- CIFAR-10, `cifar-10-batches-py/`: `data_batch_1` ... `data_batch_5` (train),
  `test_batch`, and `batches.meta` with `label_names`; batches hold `labels`;
- CIFAR-100, `cifar-100-python/`: `train`, `test`, and `meta` with
  `fine_label_names`; batches hold `fine_labels` (used here) and
  `coarse_labels`.

Every batch is a pickled dict whose `data` is a uint8 [N, 3072] array, each
row one image as 1024 red, then 1024 green, then 1024 blue values (row-major
32x32 planes). All files go through `safe_pickle.load_pickle`.
"""

import dataclasses
import os

import numpy as np

from ar2_tf.data.safe_pickle import load_pickle
from ar2_tf.errors import UserError

IMAGE_SIZE = 32
_ROW_LENGTH = 3 * IMAGE_SIZE * IMAGE_SIZE


@dataclasses.dataclass(frozen=True)
class _Layout:
    folder: str  # the folder the official archive extracts to
    train: tuple  # training batch files, in official order
    test: tuple  # test batch files
    meta: str  # file holding the class names
    names_key: str  # key of the class names in `meta`
    labels_key: str  # key of the labels in each batch


_LAYOUTS = {
    10: _Layout("cifar-10-batches-py", tuple(f"data_batch_{i}" for i in range(1, 6)), ("test_batch",),
                "batches.meta", "label_names", "labels"),
    100: _Layout("cifar-100-python", ("train",), ("test",), "meta", "fine_label_names", "fine_labels"),
}


def _describe(layout):
    files = ", ".join(layout.train + layout.test + (layout.meta,))
    return f"{layout.folder}/ holding {files}, as extracted from the official python-version archive"


def _find_folder(data_dir, layout, num_classes):
    """The folder holding the files: `data_dir` itself or its `layout.folder` sub-folder."""
    for folder in (str(data_dir), os.path.join(str(data_dir), layout.folder)):
        if os.path.isfile(os.path.join(folder, layout.meta)):
            return folder
    if not os.path.isdir(data_dir):
        raise UserError(f"CIFAR data dir {str(data_dir)!r} is not a folder; pass the folder {_describe(layout)} "
                        "(or its parent).")
    raise UserError(f"{str(data_dir)!r} holds no CIFAR-{num_classes} python-format data: {layout.meta} is missing "
                    f"there and in {layout.folder}/. Expected {_describe(layout)}; pass that folder or its parent "
                    "as the data dir.")


def _field(batch, key, path):
    """`batch[key]`, whether the pickle's keys are bytes (official files) or str."""
    for candidate in (key.encode("ascii"), key):
        if candidate in batch:
            return batch[candidate]
    found = ", ".join(sorted(k.decode("latin1") if isinstance(k, bytes) else str(k) for k in batch))
    raise UserError(f"{path} has no {key!r} entry (found: {found or 'nothing'}); it is not an official CIFAR python "
                    "batch. Download the python-version archive again.")


def _load_dict(path):
    if not os.path.isfile(path):
        raise UserError(f"CIFAR file {path} is missing; the official python-format folder holds every batch file. "
                        "Extract the whole python-version archive again.")
    batch = load_pickle(path)
    if not isinstance(batch, dict):
        raise UserError(f"{path} holds a {type(batch).__name__}, not the dict of an official CIFAR python batch. "
                        "Download the python-version archive again.")
    return batch


def _to_str(name):
    return name.decode("utf-8", "replace") if isinstance(name, bytes) else str(name)


def _class_names(folder, layout, num_classes):
    path = os.path.join(folder, layout.meta)
    names = _field(_load_dict(path), layout.names_key, path)
    if not isinstance(names, (list, tuple)) or len(names) != num_classes:
        count = len(names) if isinstance(names, (list, tuple)) else type(names).__name__
        raise UserError(f"{path}: {layout.names_key!r} should list {num_classes} class names, found {count}; pass "
                        f"the {layout.folder}/ folder for CIFAR-{num_classes}.")
    return tuple(_to_str(name) for name in names)


def _labels(raw, path, key):
    """The labels of a batch as a 1-D integer array, or a `UserError`."""
    try:
        labels = np.asarray(raw)
    except ValueError:  # a ragged list
        labels = None
    if labels is None or labels.ndim != 1 or (labels.size and not np.issubdtype(labels.dtype, np.integer)):
        found = f"{labels.dtype} {list(labels.shape)}" if labels is not None else "a ragged list"
        raise UserError(f"{path}: {key!r} should be a flat list of integer labels, got {found}. Download the "
                        "python-version archive again.")
    return labels


def _read_batch(path, layout, num_classes):
    """(uint8 [N, 32, 32, 3] NHWC images, int64 [N] labels) of one batch file."""
    batch = _load_dict(path)
    data, labels = _field(batch, "data", path), _field(batch, layout.labels_key, path)
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != _ROW_LENGTH:
        shape = f"{data.dtype} {list(data.shape)}" if isinstance(data, np.ndarray) else type(data).__name__
        raise UserError(f"{path}: 'data' is {shape}; official CIFAR batches hold a uint8 [N, {_ROW_LENGTH}] array "
                        f"(N images of 3x{IMAGE_SIZE}x{IMAGE_SIZE}). Download the python-version archive again.")
    labels = _labels(labels, path, layout.labels_key)
    if len(labels) != len(data):
        raise UserError(f"{path} has {len(data)} images but {len(labels)} labels in {layout.labels_key!r}; the "
                        "file is damaged. Download the python-version archive again.")
    if len(labels) and (labels.min() < 0 or labels.max() >= num_classes):
        raise UserError(f"{path}: labels range over {labels.min()}..{labels.max()}, but CIFAR-{num_classes} has "
                        f"labels 0..{num_classes - 1}; pass the {layout.folder}/ folder for CIFAR-{num_classes}.")
    # Rows are channel planes (C, H, W); the project works in NHWC.
    images = data.reshape(-1, 3, IMAGE_SIZE, IMAGE_SIZE).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(images), labels.astype(np.int64)


def _read_split(folder, names, layout, num_classes):
    parts = [_read_batch(os.path.join(folder, name), layout, num_classes) for name in names]
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def load_cifar_python(data_dir, num_classes: int) -> dict:
    """Reads an official CIFAR-10 or CIFAR-100 python-format folder.

    Args:
        data_dir: `cifar-10-batches-py/` / `cifar-100-python/`, or the folder
            that holds it.
        num_classes: 10 or 100 (CIFAR-100 uses the fine labels).

    Returns:
        {"x_train": uint8 [N, 32, 32, 3], "y_train": int64 [N], "x_test",
        "y_test", "class_names": tuple of str}, in the official order.

    Raises:
        UserError: the folder or one of its files is missing, a file is not a
            safe CIFAR pickle, or its arrays have the wrong shape or count.
    """
    if num_classes not in _LAYOUTS:
        raise UserError(f"CIFAR python-format data has 10 or 100 classes, got num_classes={num_classes!r}; use "
                        "dataset cifar10 or cifar100.")
    layout = _LAYOUTS[num_classes]
    folder = _find_folder(data_dir, layout, num_classes)
    class_names = _class_names(folder, layout, num_classes)
    x_train, y_train = _read_split(folder, layout.train, layout, num_classes)
    x_test, y_test = _read_split(folder, layout.test, layout, num_classes)
    return {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test, "class_names": class_names}
