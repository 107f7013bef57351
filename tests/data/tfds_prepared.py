"""Prepared TFDS datasets written offline for the tests: what `tfds build` leaves on disk (TFRecord shards
and dataset_info.json), from images generated here, with no download."""

import numpy as np


def prepare(data_dir, *, version="1.0.0", splits=None, channels=3, class_names=("rose", "tulip", "daisy"),
            supervised=True, label=True):
    """Writes the dataset `tiny_flowers` (`version`) under `data_dir`; returns its version folder.

    `splits`: {split name: image count}, default {"train": 30, "test": 9}; image i has label i % classes and
    a size between 20 and 59 pixels (a different size per image, as in real photo datasets)."""
    import tensorflow_datasets as tfds

    splits = splits or {"train": 30, "test": 9}
    features = {"image": tfds.features.Image(shape=(None, None, channels))}
    features["label"] = (tfds.features.ClassLabel(names=list(class_names)) if label
                         else tfds.features.Scalar(np.int64))

    class TinyFlowers(tfds.core.GeneratorBasedBuilder, skip_registration=True):
        VERSION = tfds.core.Version(version)

        def _info(self):
            return tfds.core.DatasetInfo(builder=self, features=tfds.features.FeaturesDict(features),
                                         supervised_keys=("image", "label") if supervised else None)

        def _split_generators(self, dl_manager):
            return {name: self._generate_examples(count, seed) for seed, (name, count) in enumerate(splits.items())}

        def _generate_examples(self, count, seed):
            rng = np.random.default_rng(seed)
            for index in range(count):
                height, width = rng.integers(20, 60, 2)
                yield index, {"image": rng.integers(0, 256, (height, width, channels), dtype=np.uint8),
                              "label": index % len(class_names)}

    builder = TinyFlowers(data_dir=str(data_dir))
    builder.download_and_prepare()
    return builder.data_dir
