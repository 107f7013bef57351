"""Datasets stored as NumPy `.npz` arrays (read with `allow_pickle=False`).

Two layouts are understood, the ones in ../shared/data:
- raw pixels: `x_train`, `y_train`, `x_test`, `y_test` (uint8 NHWC), optional
  `class_names`; CIFAR-100 files may use `x_train_exact` + `train_exact_index`
  with full `y_train_fine` / `y_test_fine` label arrays instead;
- JPEG bytes: `train_jpeg_bytes` + `train_offsets` (image i is
  `bytes[offsets[i]:offsets[i + 1]]`), the same for test, with `y_train`/`y_test`.

The last two files read stay decoded, read-only, for the process: a benchmark loads the same training
data and evaluation data (`--data-dir`, `--eval-data-dir`) for each of its runs, and decoding
CIFAR-10's 60,000 JPEGs takes 1.5-2.5 s every time.
"""

import functools
import os

import numpy as np
import tensorflow as tf

from ar2_tf.errors import UserError


def _decode_jpegs(blob, offsets):
    pieces = [blob[offsets[i]:offsets[i + 1]].tobytes() for i in range(len(offsets) - 1)]
    dataset = tf.data.Dataset.from_tensor_slices(pieces).map(
        lambda b: tf.io.decode_jpeg(b, channels=3), num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return np.concatenate(list(dataset.batch(4096).as_numpy_iterator()))


def _split(data, split, path):
    if f"x_{split}" in data:
        return data[f"x_{split}"], data[f"y_{split}"]
    if f"{split}_jpeg_bytes" in data:
        return _decode_jpegs(data[f"{split}_jpeg_bytes"], data[f"{split}_offsets"]), data[f"y_{split}"]
    if f"x_{split}_exact" in data:  # CIFAR-100 exact prefix: labels are indexed by position
        return data[f"x_{split}_exact"], data[f"y_{split}_fine"][data[f"{split}_exact_index"]]
    raise UserError(f"{path}: no {split} images found (keys: {', '.join(sorted(data))}); expected x_{split}/y_{split} "
                    f"arrays or {split}_jpeg_bytes/{split}_offsets.")


def _class_names(data, num_classes):
    for key in ("class_names", "fine_label_names", "label_names"):
        if key in data and len(data[key]) == num_classes:
            return tuple(str(name) for name in data[key])
    return tuple(str(i) for i in range(num_classes))


def load_npz(path: str, num_classes: int) -> dict:
    """Reads an .npz dataset file into x_train/y_train/x_test/y_test/class_names arrays (read-only)."""
    try:
        stat = os.stat(path)
    except OSError as error:
        raise UserError(f"could not read {path!r} as an .npz array file: {error}") from None
    return dict(_load(os.path.abspath(path), stat.st_mtime_ns, stat.st_size, num_classes))


@functools.lru_cache(maxsize=2)  # training and evaluation data; keyed by the file's path, modification time and size: a changed file is re-read
def _load(path, mtime_ns, size, num_classes) -> dict:
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
    except (OSError, ValueError) as error:
        raise UserError(f"could not read {path!r} as an .npz array file: {error}") from None
    result = {"class_names": _class_names(arrays, num_classes)}
    for split in ("train", "test"):
        images, labels = _split(arrays, split, path)
        if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8:
            raise UserError(f"{path}: {split} images have shape {images.shape} and dtype {images.dtype}; "
                            "expected uint8 [N, H, W, 3].")
        result[f"x_{split}"], result[f"y_{split}"] = images, labels.astype(np.int64)
        for array in (result[f"x_{split}"], result[f"y_{split}"]):
            array.flags.writeable = False  # shared by every caller of this file
    return result
