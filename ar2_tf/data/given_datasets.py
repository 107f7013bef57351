"""A run's data handed over as `tf.data.Dataset`s (`ar2_tf.repair(model, train_dataset, ...)`): the sources the
run reads instead of loading its config's data paths.

Each of `train`, `test` and `val` yields `(images, labels)`, batched or not: images uint8 or float 0..255 (what
`keras.utils.image_dataset_from_directory` gives), labels integer or one-hot. Each is read once here, to count
its images, read its labels and check its pixels; the run then reads it again as its unbatched
`(uint8 image, int64 label)` pairs. Subsets, the held-out test fifth of a `train` without `test`, and the
validation part of `test` are drawn as for the same pixels given as arrays (`ar2_tf.data.sources`,
`ar2_tf.data.user_arrays`), so both runs train, select and report on the same images.

A dataset has no content hash the run folder could record without reading it all: the run's config names it
`TRAIN` (its `data_dir`), and `ar2_tf.repair` neither resumes nor reuses such a run.
"""

import dataclasses

import numpy as np
import tensorflow as tf

from ar2_tf.data import holdout
from ar2_tf.data.image_folder import held_out
from ar2_tf.data.pairs import as_pixels
from ar2_tf.data.sources import DatasetSource, load_dataset, resize_uint8, set_aside, subset_index
from ar2_tf.errors import UserError

TRAIN = "<the train tf.data.Dataset>"  # the data_dir a dataset-fed run records
VAL = "<the val tf.data.Dataset>"  # its val_data_dir, when `val` is a dataset
_SCAN_BATCH = 256  # images per batch when a dataset of single images is read


@dataclasses.dataclass(frozen=True)
class Given:
    """One dataset as the run reads it.

    Attributes:
        batches: (uint8 [B, H, W, 3], int64 [B]) batches, in the dataset's order.
        labels: every label, in that order (read once).
        image_shape: (H, W) of its images.
    """

    batches: tf.data.Dataset
    labels: np.ndarray
    image_shape: tuple

    @property
    def size(self) -> int:
        return len(self.labels)

    def pairs(self, mask=None) -> tf.data.Dataset:
        """Its unbatched (image, label) pairs, those where `mask` is True when given (order kept, size known)."""
        pairs = self.batches.unbatch().apply(tf.data.experimental.assert_cardinality(self.size))
        return pairs if mask is None else holdout.masked(pairs, mask)


@dataclasses.dataclass(frozen=True)
class GivenDatasets:
    """The `train` dataset, and the `test` and `val` ones when given, read once (`given_datasets`)."""

    train: Given
    test: Given
    val: Given
    class_names: tuple

    def load(self, name, data_dir, train_size=None, test_size=None, image_size=None, seed=0, strict=False,
             validation=0) -> DatasetSource:
        """What `ar2_tf.data.sources.load_dataset` (same arguments) returns for the same pixels as arrays of
        `name` "npz": `data_dir` is `TRAIN` (train and test splits) or `VAL` (the `val` images as the test
        split); `image_size` and `strict` were applied when the datasets were read."""
        if data_dir == VAL:
            chosen = _mask(self.val.size, test_size, seed)
            return DatasetSource("npz", self.val.pairs().take(0), self.val.pairs(chosen), self.class_names,
                                 self.val.image_shape, 0, int(chosen.sum()))
        if data_dir != TRAIN:  # a data path among the datasets
            return load_dataset(name, data_dir, train_size, test_size, image_size, seed, strict, validation)
        train = self.train
        if self.test is None:  # a fixed fifth of each class tests, as for x/y arrays without x_test
            testing = held_out(train.labels)
            if not testing.any():
                raise UserError("no class of `train` holds two images or more, so none is held out to test on; "
                                "pass `test` images.")
            test_pairs, test_count, test_held_out = train.pairs(testing), int(testing.sum()), False
        else:
            testing = np.zeros(train.size, bool)
            test_pairs, test_count, test_held_out = self.test.pairs(), self.test.size, True
        positions = np.flatnonzero(~testing)  # then a `train_size` subset of the others, as the arrays' loading
        trained = np.zeros(train.size, bool)
        trained[positions[subset_index(len(positions), train_size, seed)]] = True
        train_pairs = train.pairs() if trained.all() else train.pairs(trained)
        source = DatasetSource("npz", train_pairs, test_pairs, self.class_names, train.image_shape,
                               int(trained.sum()), test_count, test_held_out=test_held_out)
        if validation:
            return set_aside(source, validation, test_size, seed)
        chosen = _mask(test_count, test_size, seed)
        return source if chosen.all() else dataclasses.replace(source, test=holdout.masked(test_pairs, chosen),
                                                                test_size=int(chosen.sum()))


def training_sample(source: DatasetSource, size: int, seed: int) -> tuple:
    """(uint8 images, labels): a seeded random `size` of `source`'s training split, in memory."""
    pairs = list(holdout.masked(source.train, _mask(source.train_size, size, seed)).as_numpy_iterator())
    return np.stack([image for image, _ in pairs]), np.array([label for _, label in pairs])


def _mask(count, size, seed) -> np.ndarray:
    mask = np.zeros(count, bool)
    mask[subset_index(count, size, seed)] = True
    return mask


def is_dataset(value) -> bool:
    return isinstance(value, tf.data.Dataset)


def given_datasets(train, test=None, val=None, image_size=None, train_subset=False) -> GivenDatasets:
    """`train`, `test` and `val` (each a `tf.data.Dataset`, or None) checked and read once (module docstring);
    `image_size` resizes their images to that square size; `train_subset`: the run draws a subset of `train`.
    Class names: the `class_names` that `keras.utils.image_dataset_from_directory` sets on its dataset, else
    `class_0`, `class_1`, ...

    The run picks and compares images by position, so a dataset it picks from (`train` without `test`, or with
    `train_subset`) and `test` (before and after are compared image by image) must give its images in the same
    order at each read; `train` alone may be shuffled.

    Raises:
        UserError: a dataset that does not yield image batches with labels, or yields none, naming its argument.
    """
    given = {what: _read(dataset, what, image_size) for what, dataset in (("train", train), ("test", test),
                                                                          ("val", val)) if dataset is not None}
    if test is None or train_subset:
        _check_order(given["train"], "train")
    if test is not None:
        _check_order(given["test"], "test")
    for what in ("test", "val"):
        if what in given and given[what].image_shape != given["train"].image_shape:
            raise UserError(f"`{what}` images are {_size(given[what])} but `train` images {_size(given['train'])}; "
                            "give them at one size, or pass image_size=N to resize all of them.")
    named = {what: tuple(str(name) for name in dataset.class_names) for what, dataset in
             (("train", train), ("test", test), ("val", val)) if getattr(dataset, "class_names", None) is not None}
    if len(set(named.values())) > 1:
        raise UserError(f"`{' and `'.join(named)}` name their classes differently ({'; '.join(map(str, named.values()))}); "
                        "load them from folders of the same class folders (or pass class_names= in the same order).")
    largest = max(int(item.labels.max()) for item in given.values())
    names = next(iter(named.values()), None) or tuple(f"class_{index}" for index in range(largest + 1))
    if largest >= len(names):
        raise UserError(f"the label {largest} needs {largest + 1} classes but the datasets' class_names list "
                        f"{len(names)}; give labels that index class_names.")
    return GivenDatasets(given["train"], given.get("test"), given.get("val"), names)


def _size(item) -> str:
    return "x".join(map(str, item.image_shape))


def _read(dataset, what, image_size) -> Given:
    """`dataset` as (uint8, int64) batches, read once for its labels, pixel range and image shape."""
    batched = _check_spec(dataset, what)
    if image_size and not batched:  # single images of any size: resized before they are batched
        dataset = dataset.map(lambda image, label: (resize_uint8(as_pixels(image), image_size), label))
    batches = dataset if batched else dataset.batch(_SCAN_BATCH)
    images = dataset.element_spec[0]
    # Single images of sizes unknown to the spec are read one by one: a batch of two sizes cannot be formed.
    scanned = batches if batched or images.shape[:2].is_fully_defined() else dataset.batch(1)

    def scan(images, labels):  # what the run needs to know: no pixels kept
        low, high = tf.reduce_min(images), tf.reduce_max(images)
        return (tf.cast(low, tf.float64), tf.cast(high, tf.float64), tf.shape(images)[1:3], labels)

    lows, highs, shapes, raw = [], [], set(), []
    for low, high, shape, labels in scanned.map(scan, num_parallel_calls=tf.data.AUTOTUNE).as_numpy_iterator():
        lows.append(low)
        highs.append(high)
        shapes.add(tuple(int(side) for side in shape))
        raw.append(labels)
    if not raw:
        raise UserError(f"`{what}` yields no images; pass a dataset that holds some (is its folder empty?).")
    low, high = min(lows), max(highs)
    if images.dtype != tf.uint8 and (low < 0 or high > 255):
        raise UserError(f"`{what}` yields pixels from {low:g} to {high:g}, not 0-255; pass the images before any "
                        "scaling (the model's own scaling is `preprocessing`).")
    if images.dtype.is_floating and high <= 1:
        raise UserError(f"`{what}` yields float pixels from {low:g} to {high:g}, scaled to [0, 1]; pass them as 0-255 "
                        "(drop the Rescaling(1/255) map, or map images * 255): `preprocessing` scales for the model.")
    if len(shapes) > 1:
        raise UserError(f"`{what}` yields images of {len(shapes)} sizes; pass image_size=N to resize them to one.")

    def pixels(images, labels):
        images = as_pixels(images)
        if image_size and batched:
            images = resize_uint8(images, image_size)
        if labels.shape.rank == 2:  # one-hot rows, or [B, 1]
            labels = labels[:, 0] if labels.shape[1] == 1 else tf.argmax(labels, axis=1)
        return images, tf.cast(labels, tf.int64)

    shape = (image_size, image_size) if image_size else shapes.pop()
    return Given(batches.map(pixels, num_parallel_calls=tf.data.AUTOTUNE), _label_indices(raw, what), shape)


def _check_spec(dataset, what) -> bool:
    """A `UserError` unless `dataset` yields (images, labels) that can be images and their classes; returns
    whether it yields batches."""
    if not is_dataset(dataset):
        raise UserError(f"`{what}` must be a tf.data.Dataset of (images, labels), or (images, labels) arrays; got "
                        f"{type(dataset).__name__}.")
    spec = dataset.element_spec
    if not (isinstance(spec, tuple) and len(spec) == 2 and all(isinstance(part, tf.TensorSpec) for part in spec)):
        raise UserError(f"`{what}` must yield (images, labels) pairs, but yields {spec}; map it to pairs first "
                        "(tfds.load(..., as_supervised=True) gives them).")
    images, labels = spec
    batched = images.shape.rank == 4
    if images.shape.rank not in (3, 4) or images.shape[-1] != 3:
        raise UserError(f"`{what}` yields images of shape {images.shape}; expected RGB images [H, W, 3] or batches "
                        "[B, H, W, 3] (image_dataset_from_directory gives them with color_mode='rgb').")
    if not (images.dtype.is_integer or images.dtype.is_floating):
        raise UserError(f"`{what}` yields {images.dtype.name} images; expected pixels 0-255, uint8 or float.")
    if not (labels.dtype.is_integer or labels.dtype.is_floating) or labels.shape.rank not in (batched, batched + 1):
        raise UserError(f"`{what}` yields labels of {labels.dtype.name} {labels.shape}; expected integer class "
                        "indices or one-hot rows (image_dataset_from_directory's label_mode 'int' or 'categorical').")
    if int(dataset.cardinality()) == int(tf.data.INFINITE_CARDINALITY):
        raise UserError(f"`{what}` repeats forever; pass it without .repeat(): the run sets its own epochs.")
    return batched


def _label_indices(raw, what) -> np.ndarray:
    """int64 class indices [N] of the labels read (batches of integer labels, [B, 1] or one-hot rows [B, C])."""
    raw = np.concatenate(raw)
    one_hot = raw.ndim == 2 and raw.shape[1] > 1
    if one_hot and not (np.all((raw == 0) | (raw == 1)) and np.all(raw.sum(axis=1) == 1)):
        raise UserError(f"`{what}` yields labels of shape {raw.shape[1:]} whose rows are not one-hot; give one "
                        "integer label per image, or one-hot rows.")
    labels = np.argmax(raw, axis=1) if one_hot else raw.reshape(len(raw), -1)[:, 0]
    if not np.array_equal(labels, np.round(labels)) or labels.min() < 0:
        raise UserError(f"`{what}` yields labels that are not class indices 0, 1, ... (from {labels.min():g}); give "
                        "integer labels, or one-hot rows.")
    return labels.astype(np.int64)


def _check_order(given: Given, what: str):
    """A `UserError` unless `given` yields its first batch alike at two reads: the run selects and compares its
    images by position."""
    first, again = (next(iter(given.batches.take(1))) for _ in range(2))
    if not all(np.array_equal(a.numpy(), b.numpy()) for a, b in zip(first, again)):
        raise UserError(f"`{what}` gives its images in another order at each read (a shuffled dataset); pass it "
                        "unshuffled (image_dataset_from_directory(..., shuffle=False)): the run shuffles its "
                        "training batches itself.")
