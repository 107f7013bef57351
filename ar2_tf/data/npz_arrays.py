"""Datasets stored as NumPy `.npz` arrays (read with `allow_pickle=False`).

Two layouts are understood, the ones in ../shared/data:
- raw pixels: `x_train`, `y_train`, `x_test`, `y_test` (uint8 NHWC), optional
  `class_names`; CIFAR-100 files may use `x_train_exact` + `train_exact_index`
  with full `y_train_fine` / `y_test_fine` label arrays instead;
- JPEG bytes: `train_jpeg_bytes` + `train_offsets` (image i is
  `bytes[offsets[i]:offsets[i + 1]]`), the same for test, with `y_train`/`y_test`.

JPEG splits are decoded when indexed (`JpegImages`): a command decodes the images it uses, not
the file's (CIFAR-10's 60,000 take 1.5-4.5 s; an evaluation reads only the test split, a
`train_size`/`test_size` run only its subset).

The last two files read stay in memory, read-only, for the process, with every whole split once
decoded: a benchmark loads the same training data and evaluation data (`data_dir`,
`eval_data_dir`) for each of its runs.
"""

import functools
import os

import numpy as np
import tensorflow as tf

from ar2_tf.errors import UserError, first_line


class JpegImages:
    """One split stored as JPEG bytes, decoded when indexed: `images[index]` decodes those images only.

    Stands where a uint8 [N, H, W, 3] array would (`len`, `shape`, `dtype`, `ndim`, indexing with
    an int array or a slice); what it returns is read-only. The whole split, once decoded, is kept,
    and later subsets are taken from it.
    """

    ndim, dtype = 4, np.dtype(np.uint8)

    def __init__(self, blob, offsets, where: str):
        self._blob, self._offsets, self._where = blob, np.asarray(offsets, np.int64), where
        self._shape, self._whole = None, None

    def __len__(self):
        return len(self._offsets) - 1

    @property
    def shape(self) -> tuple:
        """(N, H, W, 3), the size of the first image (every image must have it)."""
        if self._shape is None:
            first = self._decode(np.arange(1)) if len(self) else np.zeros((0, 0, 0, 3), np.uint8)
            self._shape = (len(self), *first.shape[1:])
        return self._shape

    def __getitem__(self, index):
        index = np.arange(len(self))[index]
        if index.ndim != 1:
            raise TypeError("index JpegImages with a slice or a 1-D array of positions")
        if np.array_equal(index, np.arange(len(self))):  # the whole split: decoded once, then kept
            if self._whole is None:
                self._whole = self._decode(index)
            return self._whole
        if self._whole is None:
            return self._decode(index)
        images = self._whole[index]
        images.flags.writeable = False
        return images

    def _decode(self, index):
        pieces = [self._blob[self._offsets[i]:self._offsets[i + 1]].tobytes() for i in index]
        dataset = tf.data.Dataset.from_tensor_slices(tf.constant(pieces, tf.string, shape=[len(pieces)])).map(
            lambda b: tf.io.decode_jpeg(b, channels=3), num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        try:
            batches = list(dataset.batch(4096).as_numpy_iterator())
        except tf.errors.OpError as error:
            raise UserError(f"{self._where}: an image could not be decoded as JPEG, or its size differs from the "
                            f"others ({first_line(error)}); re-create the file from decodable images of one size.") \
                from None
        images = np.concatenate(batches) if batches else np.zeros((0, *self.shape[1:]), np.uint8)
        images.flags.writeable = False  # kept as the whole split, it is shared by every caller of this file
        return images


def _split(data, split, path):
    if f"x_{split}" in data:
        _require(data, path, split, f"x_{split}", f"y_{split}")
        return data[f"x_{split}"], data[f"y_{split}"]
    if f"{split}_jpeg_bytes" in data:
        _require(data, path, split, f"{split}_jpeg_bytes", f"{split}_offsets", f"y_{split}")
        images = JpegImages(data[f"{split}_jpeg_bytes"], data[f"{split}_offsets"], f"{path} ({split} split)")
        return images, data[f"y_{split}"]
    if f"x_{split}_exact" in data:  # CIFAR-100 exact prefix: labels are indexed by position
        _require(data, path, split, f"x_{split}_exact", f"{split}_exact_index", f"y_{split}_fine")
        return data[f"x_{split}_exact"], data[f"y_{split}_fine"][data[f"{split}_exact_index"]]
    raise UserError(f"{path}: no {split} images found (keys: {', '.join(sorted(data))}); expected x_{split}/y_{split} "
                    f"arrays or {split}_jpeg_bytes/{split}_offsets.")


def _require(data, path, split, images, *others):
    """A `UserError` naming the arrays the split stored under `images` needs but the file lacks."""
    missing = [key for key in others if key not in data]
    if missing:
        raise UserError(f"{path} holds {images} but no {' or '.join(missing)}; its {split} split needs "
                        f"{', '.join((images, *others))}: add the missing array(s).")


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
        for array in (images, result[f"y_{split}"]):
            if isinstance(array, np.ndarray):
                array.flags.writeable = False  # shared by every caller of this file
    return result
