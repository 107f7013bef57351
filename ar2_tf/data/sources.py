"""Where images come from: one `DatasetSource` per dataset, whatever the storage.

Every source yields unbatched `(uint8 image [H, W, 3], int64 label)` pairs for a
train and a test split. Supported storage:

- `demo`: procedurally generated shapes (ships with the project, no download);
- `cifar10` / `cifar100`: tfds when no `data_dir` is given (downloads), the
  official python-format folders, or an `.npz` file (`x_train`/`y_train`/
  `x_test`/`y_test` arrays, or JPEG bytes + offsets as in ../shared/data);
- `imagenet`: an image-folder tree (`train/<class>/*.JPEG`, `val/<class>/*`), a prepared
  tfds `imagenet2012` folder, or tfds `imagenet2012` with `data_dir` as its manual download folder;
- `folder`: the user's own data: an image-folder tree (that layout, or `<class>/*` with a held-out
  test part: `ar2_tf.data.image_folder`) or a prepared TFDS dataset (`ar2_tf.data.tfds_folder`);
- `npz`: the user's own arrays, any class count and image size, kept at their size like CIFAR's
  (`ar2_tf.data.user_arrays`).
"""

import dataclasses
import os

import numpy as np
import tensorflow as tf

from ar2_tf.choices import DATASETS, LARGE_IMAGE_DATASETS, check_data_dir, default_image_size
from ar2_tf.data import demo, holdout, image_folder, tfds_folder
from ar2_tf.errors import UserError, check_choice

_NUM_CLASSES = {"demo": len(demo.CLASS_NAMES), "cifar10": 10, "cifar100": 100, "imagenet": 1000}


@dataclasses.dataclass(frozen=True)
class DatasetSource:
    """A dataset's two splits and what a model needs to know about them.

    Attributes:
        name: dataset name (one of `DATASETS`).
        train: unbatched (uint8 [H, W, 3], int64) pairs for repair.
        test: unbatched (uint8 [H, W, 3], int64) pairs for evaluation.
        class_names: one name per class, in label order.
        image_shape: (H, W) of every image, or None when sizes vary.
        train_size, test_size: number of examples in each split.
        test_held_out: whether the test split is one the data declares (CIFAR's test set, `x_test`, `val/`),
            which a model trained on its training split has not seen; False for the held-out fifth of a flat
            folder or of `x`/`y` arrays, images the model may have trained on (`ar2_tf.data.holdout`).
        validation, validation_size: the part of a held-out test split set aside for validation (`load_dataset`'s
            `validation`), or None and 0.
    """

    name: str
    train: tf.data.Dataset
    test: tf.data.Dataset
    class_names: tuple
    image_shape: tuple
    train_size: int
    test_size: int
    test_held_out: bool = True
    validation: tf.data.Dataset = None
    validation_size: int = 0

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


def load_dataset(name: str, data_dir=None, train_size=None, test_size=None, image_size=None, seed=0,
                 strict=False, validation=0):
    """Loads a dataset's splits; sizes take a seeded random subset of each split.

    Args:
        name: one of `DATASETS`.
        data_dir: folder or file holding the data (see the module docstring).
        train_size, test_size: optional subset sizes (CPU runs).
        image_size: resize images to this square size (ImageNet: resize the short
            side to 256/224 of it, then centre-crop, as ImageNet-C was made).
        seed: seed of the subset choice.
        strict: image folders: refuse files that are not decodable images instead of skipping them.
        validation: images of a held-out test split to set aside as the `validation` split (a count, or
            `holdout.AUTO` for the default part), drawn the same for every seed; the test split is then a
            `test_size` subset of the rest (`ar2_tf.data.holdout`). Ignored when the test split is not held out.
    """
    if validation == 0:
        return _load(name, data_dir, train_size, test_size, image_size, seed, strict)
    return set_aside(_load(name, data_dir, train_size, None, image_size, seed, strict), validation, test_size, seed)


def set_aside(source: DatasetSource, validation, test_size=None, seed=0) -> DatasetSource:
    """`source`, loaded with its whole test split, as `load_dataset(validation=...)` returns it: `validation`
    images of a held-out test split set aside, the test split a `test_size` subset of the rest."""
    if source.test_size == 0:  # nothing to set aside (`check_test_split` names the fix)
        return source
    if not source.test_held_out:  # the subset the loader would have taken
        chosen = np.zeros(source.test_size, bool)
        chosen[subset_index(source.test_size, test_size, seed)] = True
        return dataclasses.replace(source, test=holdout.masked(source.test, chosen), test_size=int(chosen.sum()))
    validation_split, val_size, test, count = holdout.carve(source.test, source.test_size, validation, test_size, seed)
    return dataclasses.replace(source, test=test, test_size=count, validation=validation_split,
                               validation_size=val_size)


def _load(name, data_dir, train_size, test_size, image_size, seed, strict):
    check_choice("dataset", name, DATASETS)
    if name == "demo":
        x_train, y_train, x_test, y_test = demo.load_demo(seed=seed)
        arrays = dict(x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test, class_names=demo.CLASS_NAMES)
    elif name == "npz":
        arrays = _load_user_npz(data_dir)
    elif name in LARGE_IMAGE_DATASETS:
        return _load_large(name, data_dir, train_size, test_size, default_image_size(name, image_size), seed, strict)
    else:
        arrays = _load_cifar(name, data_dir)
    return _from_arrays(name, arrays, train_size, test_size, image_size, seed)


def check_test_split(source: DatasetSource, data_dir, alternative: str) -> DatasetSource:
    """`source` if its test split holds images; else a `UserError` saying how `data_dir` gets test images, or
    `alternative`: the command's other way to give them (e.g. "pass `eval_data_dir` with test images").

    A split can be empty only where the data says so: an `.npz` file with an empty `x_test`, or one without
    `x_test` (a flat image folder alike) whose classes hold one image each, so that no fifth is held out.
    """
    if source.test_size:
        return source
    held_out = "a fifth of each class with two images or more tests"
    if not str(data_dir).endswith(".npz"):
        fix = f"add a val/ folder of test images to it (without one, {held_out})"
    elif source.name == "npz":
        fix = f"put test images in its x_test and y_test (without them, {held_out})"
    else:
        fix = "put test images in its x_test and y_test"
    raise UserError(f"the test split of {data_dir!r} holds no images; {fix}, or {alternative}.")


def _load_cifar(name, data_dir):
    num_classes = _NUM_CLASSES[name]
    if data_dir is None:
        return _tfds_arrays(name)
    if not os.path.exists(data_dir):
        raise UserError(f"data dir {data_dir!r} does not exist; pass `data_dir` with the {name} python-format "
                        "folder or an .npz file, or leave it out to download with tfds.")
    if str(data_dir).endswith(".npz"):
        from ar2_tf.data.npz_arrays import load_npz

        return load_npz(data_dir, num_classes)
    from ar2_tf.data.cifar_python import load_cifar_python

    return load_cifar_python(data_dir, num_classes)


def _load_user_npz(data_dir):
    check_data_dir("npz", data_dir, exists=True)
    from ar2_tf.data.user_arrays import load_user_npz

    return load_user_npz(data_dir)


def _tfds_arrays(name):
    import tensorflow_datasets as tfds

    try:
        (train, test), info = tfds.load(name, split=["train", "test"], as_supervised=True, batch_size=-1,
                                        with_info=True)
    except Exception as error:  # network and download errors come in many types
        raise UserError(f"tfds could not load {name!r} ({type(error).__name__}: {error}). Without internet, "
                        "pass `data_dir` with the official python-format folder or an .npz file.") from None
    return dict(x_train=train[0].numpy(), y_train=train[1].numpy(), x_test=test[0].numpy(),
                y_test=test[1].numpy(), class_names=tuple(info.features["label"].names))


def subset_index(count, size, seed):
    """The sorted positions of a seeded random subset of `size` of `count` examples (all of them when None)."""
    if size is None or size >= count:
        return np.arange(count)
    if size <= 0:
        raise UserError(f"subset size must be positive, got {size}.")
    return np.sort(np.random.default_rng(seed).choice(count, size, replace=False))


def _from_arrays(name, arrays, train_size, test_size, image_size, seed):
    class_names = tuple(str(c) for c in arrays["class_names"])
    splits = {}
    for split, size in (("train", train_size), ("test", test_size)):
        images, labels = arrays[f"x_{split}"], np.asarray(arrays[f"y_{split}"], np.int64)
        if len(images) != len(labels):
            raise UserError(f"{name} {split} split has {len(images)} images but {len(labels)} labels.")
        if len(labels) and (labels.min() < 0 or labels.max() >= len(class_names)):
            raise UserError(f"{name} {split} labels range over {labels.min()}..{labels.max()} but there are "
                            f"{len(class_names)} classes.")
        index = subset_index(len(images), size, seed)
        dataset = tf.data.Dataset.from_tensor_slices((images[index], labels[index]))
        if image_size is not None and images.shape[1:3] != (image_size, image_size):
            dataset = dataset.map(lambda x, y: (resize_uint8(x, image_size), y))
        splits[split] = (dataset, len(index))
    shape = (image_size, image_size) if image_size else tuple(arrays["x_train"].shape[1:3])
    return DatasetSource(name, splits["train"][0], splits["test"][0], class_names, shape,
                         splits["train"][1], splits["test"][1], test_held_out=arrays.get("test_given", True))


def resize_uint8(image, size):
    """Bilinear antialiased resize of uint8 image(s) to `size` ((H, W) or one int), rounded back to uint8."""
    size = (size, size) if isinstance(size, int) else size
    resized = tf.image.resize(image, size, method="bilinear", antialias=True)
    return tf.cast(tf.clip_by_value(tf.round(resized), 0, 255), tf.uint8)


def center_crop(image, size):
    """Resize the short side to size*256/224, then centre-crop size x size (ImageNet-C's protocol)."""
    shape = tf.cast(tf.shape(image)[:2], tf.float32)
    scale = (size * 256.0 / 224.0) / tf.reduce_min(shape)
    new_shape = tf.cast(tf.round(shape * scale), tf.int32)
    resized = tf.image.resize(image, new_shape, method="bilinear", antialias=True)
    top = (new_shape[0] - size) // 2
    left = (new_shape[1] - size) // 2
    cropped = resized[top:top + size, left:left + size]
    # The crop's size is data-dependent to the tracer; pin it (the native corruptions need it static).
    cropped = tf.ensure_shape(cropped, [size, size, 3])
    return tf.cast(tf.clip_by_value(tf.round(cropped), 0, 255), tf.uint8)


def _load_large(name, data_dir, train_size, test_size, image_size, seed, strict=False):
    check_data_dir(name, data_dir)
    if data_dir is not None and not os.path.isdir(data_dir):
        raise UserError(f"data dir {data_dir!r} does not exist or is not a folder; pass `data_dir` with an image-folder "
                        "tree (train/<class>/*, val/<class>/*), a prepared TFDS dataset folder or the tfds "
                        "imagenet2012 manual folder.")
    if data_dir is not None and tfds_folder.version_folder(data_dir):
        train, test, class_names, sizes = tfds_folder.load_prepared(data_dir, train_size, test_size)
    elif data_dir is not None and image_folder.looks_like_tree(data_dir):
        train, test, class_names, sizes = image_folder.load_tree(data_dir, train_size, test_size, seed, strict)
    elif name == "folder":
        raise UserError(f"{data_dir!r} holds no image-folder tree: expected train/<class>/ and val/<class>/ folders "
                        "of images, or <class>/ folders of images directly (20 % of each then tests), or a "
                        "prepared TFDS dataset (the folder holding dataset_info.json).")
    else:
        train, test, class_names, sizes = _tfds_imagenet(data_dir, train_size, test_size)
    crop = lambda x, y: (center_crop(x, image_size), y)  # noqa: E731
    if data_dir is None:
        held_out = True  # tfds imagenet2012: its validation split
    elif tfds_folder.version_folder(data_dir):
        held_out = tfds_folder.has_test_split(data_dir)
    else:
        held_out = not image_folder.is_flat(data_dir)
    return DatasetSource(name, train.map(crop, tf.data.AUTOTUNE), test.map(crop, tf.data.AUTOTUNE),
                         class_names, (image_size, image_size), *sizes, test_held_out=held_out)


def _tfds_imagenet(manual_dir, train_size, test_size):
    import tensorflow_datasets as tfds

    config = tfds.download.DownloadConfig(manual_dir=manual_dir) if manual_dir else None
    try:
        builder = tfds.builder("imagenet2012")
        builder.download_and_prepare(download_config=config)
    except Exception as error:  # missing manual files or no network
        raise UserError(f"tfds could not prepare imagenet2012 ({type(error).__name__}: {error}). Pass `data_dir` "
                        "with an image-folder tree (train/<class>/*.JPEG, val/<class>/*.JPEG) or the tfds manual "
                        "folder holding ILSVRC2012_img_train.tar and ILSVRC2012_img_val.tar.") from None
    train_split = f"train[:{train_size}]" if train_size else "train"
    test_split = f"validation[:{test_size}]" if test_size else "validation"
    train = builder.as_dataset(split=train_split, as_supervised=True)
    test = builder.as_dataset(split=test_split, as_supervised=True)
    names = tuple(builder.info.features["label"].names)
    sizes = (train_size or builder.info.splits["train"].num_examples,
             test_size or builder.info.splits["validation"].num_examples)
    return train, test, names, sizes
