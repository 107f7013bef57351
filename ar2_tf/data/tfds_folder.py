"""Prepared TFDS datasets on disk: the TFRecord shards and `dataset_info.json` that `tfds build`,
`builder.download_and_prepare()` or `tfds.folder_dataset.write_metadata` (your own TFRecords) write.

The `dataset` "folder" with `data_dir` DIR reads one when DIR is its version folder
(`~/tensorflow_datasets/oxford_flowers102/2.1.1`, holding `dataset_info.json`) or its dataset folder
(`~/tensorflow_datasets/oxford_flowers102`: the newest version in it). It is read with
`tfds.builder_from_directory`, so no builder code, no download and no network are needed.

- Images and labels: the dataset's supervised keys, or else its one `Image` and one `ClassLabel`
  feature; class names are the `ClassLabel`'s. Gray images are repeated in the three channels and an
  alpha channel is dropped, as for image folders.
- Splits: `train` trains; the test split is the first of `val`, `validation`, `test` that exists (the
  image folders' order). Without one, the last `TEST_FRACTION` of `train` (tfds slicing, in the order
  tfds shuffled the examples when preparing them) tests and the rest trains, the same for every seed.
- `train_size` N / `test_size` N take the first N examples of the split (as the tfds `imagenet2012` path
  does), not a seeded draw: tfds reads a split in its prepared order.
"""

import os

import tensorflow as tf

from ar2_tf.data.image_folder import TEST_FOLDERS, TEST_FRACTION
from ar2_tf.errors import UserError

INFO_FILE = "dataset_info.json"


def version_folder(root):
    """The prepared version folder `root` is or holds (the newest), or None when it is neither."""
    if os.path.isfile(os.path.join(root, INFO_FILE)):
        return root
    versions = [entry.name for entry in os.scandir(root)
                if entry.is_dir() and os.path.isfile(os.path.join(entry.path, INFO_FILE))]
    if not versions:
        return None
    return os.path.join(root, max(versions, key=_version_key))


def _version_key(name):
    try:
        return (1, tuple(int(part) for part in name.split(".")))
    except ValueError:
        return (0, (name,))


def load_prepared(root, train_size=None, test_size=None):
    """Returns (train, test, class_names, (train_count, test_count)) for the prepared dataset at `root`,
    as `image_folder.load_tree` does for image folders: unbatched (uint8 [H, W, 3], int64) pairs."""
    import tensorflow_datasets as tfds

    folder = version_folder(root)
    try:
        builder = tfds.builder_from_directory(folder)
    except Exception as error:  # a damaged or foreign dataset_info.json: tfds raises many types
        raise UserError(f"{folder!r} looks like a prepared TFDS dataset but tfds cannot read it "
                        f"({type(error).__name__}: {error}); rebuild it with `tfds build`.") from None
    image_key, label_key = _keys(builder.info, folder)
    splits = builder.info.splits
    test_name = next((name for name in TEST_FOLDERS if name in splits), None)
    if "train" not in splits:
        raise UserError(f"TFDS dataset {folder!r} has no train split (it has {', '.join(splits)}).")
    if test_name is None:
        kept = round(100 * (1 - TEST_FRACTION))
        train_split, test_split = f"train[:{kept}%]", f"train[{kept}%:]"
    else:
        train_split, test_split = "train", test_name
    train, train_count = _split(builder, train_split, train_size, image_key, label_key)
    test, test_count = _split(builder, test_split, test_size, image_key, label_key)
    return train, test, tuple(builder.info.features[label_key].names), (train_count, test_count)


def has_test_split(root) -> bool:
    """Whether the prepared dataset at `root` declares a test split (else a held-out part of train tests)."""
    import tensorflow_datasets as tfds

    splits = tfds.builder_from_directory(version_folder(root)).info.splits
    return any(name in splits for name in TEST_FOLDERS)


def _keys(info, folder):
    """(image feature, label feature) of the dataset: its supervised keys, else its one Image and ClassLabel."""
    import tensorflow_datasets as tfds

    features = info.features
    keys = info.supervised_keys
    if keys and len(keys) == 2 and all(isinstance(key, str) and key in features for key in keys):
        image_key, label_key = keys
    else:
        images = [key for key, feature in features.items() if isinstance(feature, tfds.features.Image)]
        labels = [key for key, feature in features.items() if isinstance(feature, tfds.features.ClassLabel)]
        if len(images) != 1 or len(labels) != 1:
            raise UserError(f"TFDS dataset {folder!r} has no supervised keys and not one Image and one ClassLabel "
                            f"feature (features: {', '.join(features)}); ar2-tf needs images with class labels.")
        image_key, label_key = images[0], labels[0]
    if not isinstance(features[image_key], tfds.features.Image) or features[image_key].shape[-1] not in (1, 3, 4):
        raise UserError(f"TFDS dataset {folder!r}: feature {image_key!r} is not an image of 1, 3 or 4 channels.")
    if not isinstance(features[label_key], tfds.features.ClassLabel):
        raise UserError(f"TFDS dataset {folder!r}: feature {label_key!r} is not a ClassLabel (class names).")
    return image_key, label_key


def _split(builder, split, size, image_key, label_key):
    count = builder.info.splits[split].num_examples
    channels = builder.info.features[image_key].shape[-1]
    dataset = builder.as_dataset(split=split, shuffle_files=False)
    if size is not None:
        if size <= 0:
            raise UserError(f"subset size must be positive, got {size}.")
        dataset, count = dataset.take(size), min(size, count)
    return dataset.map(lambda example: (_rgb(example[image_key], channels), example[label_key]),
                       num_parallel_calls=tf.data.AUTOTUNE, deterministic=True), count


def _rgb(image, channels):
    if channels == 1:
        return tf.image.grayscale_to_rgb(image)
    return image[..., :3]
