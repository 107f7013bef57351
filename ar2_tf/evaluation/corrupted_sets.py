"""Corrupted test sets from every source, behind one interface.

Every source answers `batches(corruption, severity, batch_size)` with a
`tf.data.Dataset` of `(uint8 images [B, H, W, 3], int64 labels)` in a fixed
order. Problems with one corruption (a missing file, a count mismatch) raise a
`UserError` from that call only, so an evaluation can go on with the others.

- `NumpyCSource`: the official CIFAR-10-C / CIFAR-100-C folders,
  `<corruption>.npy` (5·N images stacked by severity 1..5) and `labels.npy`
  (5·N labels, or N);
- `TFDSSource`: tfds `cifar10_corrupted`, config `<corruption>_<severity>`
  (always named: the builder's default config is brightness_1);
- `ImageNetCSource`: ImageNet-C folders, `<corruption>/<severity>/<class>/*.JPEG`;
- `GeneratedSource` (`ar2_tf.evaluation.generated_sets`): made from the clean
  test split with the project's corruptions, streamed by default, cached on
  disk within a budget on request.

The CIFAR-C files are read with `generated_sets.npy_batches`, which releases
each pass's memory maps.

`open_corrupted_source` picks one from a `corrupted_dir` value.
"""

import glob
import os

import numpy as np
import tensorflow as tf

from ar2_tf import corruptions
from ar2_tf.errors import UserError, first_line
from ar2_tf.evaluation.generated_sets import (  # noqa: F401 (re-exported: the sources' one import)
    DEFAULT_CACHE_BUDGET_GB,
    DEFAULT_CACHE_DIR,
    GeneratedSource,
    corruption_code_version,
    npy_batches,
    split_fingerprint,
)

_SEVERITIES = 5


def _check_known(corruption, severity):
    corruptions.check_corruption(corruption)
    if int(severity) not in range(1, _SEVERITIES + 1):
        raise UserError(f"severity must be 1-5, got {severity!r}.")


class NumpyCSource:
    """The official CIFAR-10-C / CIFAR-100-C layout: `<corruption>.npy` and `labels.npy`.

    Args:
        folder: the folder holding the .npy files.
        limit: use only the first `limit` images of each severity (quick runs).
        image_shape: (H, W) of the clean test images: a file of another size is refused by name.
    """

    def __init__(self, folder, limit=None, image_shape=None):
        self.folder, self.limit, self.image_shape = folder, limit, image_shape
        self.description = {"kind": "cifar-c-npy", "folder": os.path.abspath(folder), "limit": limit}

    def _check(self, corruption):
        """(images path, labels path, one label per image?, images per severity) of a checked corruption file."""
        path = os.path.join(self.folder, f"{corruption}.npy")
        if not os.path.exists(path):
            found = sorted(os.path.basename(p)[:-4] for p in glob.glob(os.path.join(self.folder, "*.npy")))
            found = [name for name in found if name != "labels"]
            raise UserError(f"corruption file {path!r} is missing (found: {', '.join(found) or 'none'}); "
                            "download the full CIFAR-10-C / CIFAR-100-C archive, or evaluate fewer corruptions "
                            "with `corruptions`.")
        labels_path = os.path.join(self.folder, "labels.npy")
        if not os.path.exists(labels_path):
            raise UserError(f"{labels_path!r} is missing; the CIFAR-C folder needs labels.npy next to the "
                            "corruption files.")
        images, labels = _map_npy(path), _map_npy(labels_path)
        if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8:
            raise UserError(f"{path!r} holds {images.dtype} {images.shape}; expected uint8 [5*N, H, W, 3].")
        if self.image_shape and None not in self.image_shape and images.shape[1:3] != self.image_shape:
            raise UserError(f"{path!r} holds {images.shape[1]}x{images.shape[2]} images but the clean test images "
                            f"are {self.image_shape[0]}x{self.image_shape[1]}; pass the corrupted sets of this "
                            "dataset.")
        if len(images) % _SEVERITIES:
            raise UserError(f"{path!r} holds {len(images)} images, not a multiple of 5 severities; "
                            "the file is incomplete, download it again.")
        per_severity = len(images) // _SEVERITIES
        if len(labels) not in (per_severity, len(images)):
            raise UserError(f"label/image count mismatch: {labels_path!r} has {len(labels)} labels but "
                            f"{path!r} has {len(images)} images ({per_severity} per severity); both files must "
                            "come from the same CIFAR-C release.")
        return path, labels_path, len(labels) == len(images), per_severity

    def batches(self, corruption, severity, batch_size):
        _check_known(corruption, severity)
        path, labels_path, label_per_image, count = self._check(corruption)
        start = (int(severity) - 1) * count
        stop = start + min(count, self.limit or count)
        return npy_batches(path, labels_path, start=start, stop=stop, label_start=start if label_per_image else 0,
                             batch_size=batch_size)


def _map_npy(path):
    """The .npy array at `path`, memory-mapped; a truncated or foreign file is a UserError naming it."""
    try:
        return np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError) as error:  # numpy's header and mmap checks
        raise UserError(f"{path!r} is truncated or not a NumPy .npy array ({first_line(error)}); download it "
                        "again (an interrupted download or extraction leaves a short file).") from None


class TFDSSource:
    """tfds `cifar10_corrupted` (or another builder with `<corruption>_<severity>` configs)."""

    def __init__(self, name="cifar10_corrupted", data_dir=None, limit=None):
        self.name, self.data_dir, self.limit = name, data_dir, limit
        self.description = {"kind": "tfds", "name": name, "data_dir": data_dir, "limit": limit}

    def batches(self, corruption, severity, batch_size):
        import tensorflow_datasets as tfds

        _check_known(corruption, severity)
        config = f"{self.name}/{corruption}_{int(severity)}"  # never the default config (brightness_1)
        split = f"test[:{self.limit}]" if self.limit else "test"
        try:
            dataset = tfds.load(config, split=split, as_supervised=True, data_dir=self.data_dir)
        except Exception as error:  # unknown configs, missing downloads and network errors come in many types
            raise UserError(f"tfds could not load {config!r} ({type(error).__name__}: {error}). Without internet, "
                            "pass `corrupted_dir` with the official CIFAR-10-C folder, or leave it out to "
                            "generate the corrupted sets.") from None
        return dataset.batch(batch_size).map(lambda x, y: (x, tf.cast(y, tf.int64)))


class ImageNetCSource:
    """ImageNet-C folders: `<root>/<corruption>/<severity>/<class>/*.JPEG`.

    Args:
        root: the ImageNet-C folder.
        class_names: class folder names in label order (the clean dataset's); None: sorted folders.
        image_size: resize to this square size if the files differ (ImageNet-C is 224 px).
        limit: use only the first `limit` files (in sorted class / file order) per severity.
    """

    def __init__(self, root, class_names=None, image_size=None, limit=None):
        self.root, self.class_names, self.image_size, self.limit = root, class_names, image_size, limit
        self.description = {"kind": "imagenet-c-folder", "root": os.path.abspath(root), "limit": limit,
                            "image_size": image_size}

    def _files(self, corruption, severity):
        from ar2_tf.data.image_folder import list_classes, list_files

        _check_known(corruption, severity)
        folder = os.path.join(self.root, corruption, str(int(severity)))
        if not os.path.isdir(folder):
            raise UserError(f"ImageNet-C folder {folder!r} is missing; expected "
                            f"{self.root}/<corruption>/<severity>/<class>/*.JPEG, or evaluate fewer corruptions "
                            "with `corruptions`.")
        classes = tuple(self.class_names) if self.class_names else list_classes(folder)
        paths, labels = list_files(folder, classes)
        return (paths[:self.limit], labels[:self.limit]) if self.limit else (paths, labels)

    def diagnose(self, corruption, severity):
        """After a pass over a set failed in TensorFlow: its files that do not decode, named in one line (None
        when every file decodes). Decoding them all again is paid only then, not on every pass."""
        from ar2_tf.data import image_scan

        bad = image_scan.undecodable(self._files(corruption, severity)[0])
        if not bad:
            return None
        return (f"{len(bad)} file(s) of {corruption} severity {severity} do not decode (e.g. "
                f"{', '.join(repr(str(path)) for path in bad[:3])}): corrupt, truncated or not images; replace them "
                "with the set's own files")

    def batches(self, corruption, severity, batch_size):
        paths, labels = self._files(corruption, severity)
        size = self.image_size

        def decode(path, label):
            image = tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)
            if size:
                resized = tf.image.resize(image, (size, size), antialias=True)
                image = tf.cast(tf.clip_by_value(tf.round(resized), 0, 255), tf.uint8)
            return image, label

        dataset = tf.data.Dataset.from_tensor_slices((paths, labels))
        return dataset.map(decode, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True).batch(batch_size)


def open_corrupted_source(corrupted_dir, *, clean_split, dataset, class_names=None, image_size=None, params,
                          backend="native", seed=0, cache_dir=None, cache_budget_gb=DEFAULT_CACHE_BUDGET_GB,
                          limit=None, verbose=1):
    """The source a `corrupted_dir` value names.

    Args:
        corrupted_dir: None (generate from `clean_split`), "tfds" or "tfds:DATA_DIR" (cifar10 only),
            a CIFAR-C folder of .npy files, or an ImageNet-C folder.
        clean_split, dataset, class_names, image_size: the clean test data and what it is.
        params, backend, seed, cache_dir, cache_budget_gb, verbose: generation settings (see `GeneratedSource`).
        limit: first images per severity of an official set (matches `test_size`).
    """
    if corrupted_dir is None:
        return GeneratedSource(clean_split, params=params, backend=backend, seed=seed, cache_dir=cache_dir,
                               cache_budget_gb=cache_budget_gb, verbose=verbose)
    if corrupted_dir == "tfds" or corrupted_dir.startswith("tfds:"):
        if dataset != "cifar10":
            raise UserError(f"tfds has corrupted test sets for cifar10 only (cifar10_corrupted), not {dataset!r}; "
                            "pass the official folder as `corrupted_dir`, or leave it out to generate them.")
        return TFDSSource(data_dir=corrupted_dir[5:] or None, limit=limit)
    if not os.path.isdir(corrupted_dir):
        raise UserError(f"`corrupted_dir` {corrupted_dir!r} is not a folder; pass the CIFAR-10-C / CIFAR-100-C "
                        "folder (<corruption>.npy, labels.npy), an ImageNet-C folder, or 'tfds'.")
    if glob.glob(os.path.join(corrupted_dir, "*.npy")):
        clean_shape = None if clean_split is None else tuple(clean_split.element_spec[0].shape[:2])
        return NumpyCSource(corrupted_dir, limit=limit, image_shape=clean_shape)
    if any(os.path.isdir(os.path.join(corrupted_dir, name)) for name in corruptions.ALL_CORRUPTIONS):
        return ImageNetCSource(corrupted_dir, class_names=class_names, image_size=image_size, limit=limit)
    raise UserError(f"`corrupted_dir` {corrupted_dir!r} holds neither <corruption>.npy files (CIFAR-C) nor "
                    "<corruption>/<severity>/<class>/ folders (ImageNet-C).")
