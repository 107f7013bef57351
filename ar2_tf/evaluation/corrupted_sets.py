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
- `GeneratedSource`: made from the clean test split with the project's
  corruptions, stateless-seeded per batch (the noise of batch i at severity s
  uses seed (seed + 1000·s, i), exactly as `ar2_tf.data.pipelines.corrupted_pipeline`
  with the same batch size), and cached on disk under a key that hashes
  everything the pixels depend on.

`open_corrupted_source` picks one from a `--corrupted-dir` value.
"""

import glob
import hashlib
import json
import os
import shutil

import numpy as np
import tensorflow as tf

from ar2_tf import corruptions
from ar2_tf.data import seeds
from ar2_tf.errors import UserError

DEFAULT_CACHE_DIR = os.path.join(os.path.expanduser("~"), ".cache", "ar2_tf", "corrupted_sets")
_SEVERITIES = 5


def _array_batches(images, labels, batch_size):
    """Batches of in-memory or memory-mapped arrays, read slice by slice (no graph constants)."""
    count = len(labels)

    def generate():
        for start in range(0, count, batch_size):
            yield np.ascontiguousarray(images[start:start + batch_size]), labels[start:start + batch_size]

    signature = (tf.TensorSpec((None, *images.shape[1:]), tf.uint8), tf.TensorSpec((None,), tf.int64))
    return tf.data.Dataset.from_generator(generate, output_signature=signature)


def _check_known(corruption, severity):
    corruptions.check_corruption(corruption)
    if int(severity) not in range(1, _SEVERITIES + 1):
        raise UserError(f"severity must be 1-5, got {severity!r}.")


class NumpyCSource:
    """The official CIFAR-10-C / CIFAR-100-C layout: `<corruption>.npy` and `labels.npy`.

    Args:
        folder: the folder holding the .npy files.
        limit: use only the first `limit` images of each severity (quick runs).
    """

    def __init__(self, folder, limit=None):
        self.folder, self.limit = folder, limit
        self.description = {"kind": "cifar-c-npy", "folder": os.path.abspath(folder), "limit": limit}

    def _load(self, corruption):
        path = os.path.join(self.folder, f"{corruption}.npy")
        if not os.path.exists(path):
            found = sorted(os.path.basename(p)[:-4] for p in glob.glob(os.path.join(self.folder, "*.npy")))
            found = [name for name in found if name != "labels"]
            raise UserError(f"corruption file {path!r} is missing (found: {', '.join(found) or 'none'}); "
                            "download the full CIFAR-10-C / CIFAR-100-C archive, or evaluate fewer corruptions "
                            "with --corruptions.")
        labels_path = os.path.join(self.folder, "labels.npy")
        if not os.path.exists(labels_path):
            raise UserError(f"{labels_path!r} is missing; the CIFAR-C folder needs labels.npy next to the "
                            "corruption files.")
        images = np.load(path, mmap_mode="r", allow_pickle=False)
        labels = np.load(labels_path, allow_pickle=False).astype(np.int64)
        if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8:
            raise UserError(f"{path!r} holds {images.dtype} {images.shape}; expected uint8 [5*N, H, W, 3].")
        if len(images) % _SEVERITIES:
            raise UserError(f"{path!r} holds {len(images)} images, not a multiple of 5 severities; "
                            "the file is incomplete, download it again.")
        per_severity = len(images) // _SEVERITIES
        if len(labels) not in (per_severity, len(images)):
            raise UserError(f"label/image count mismatch: {labels_path!r} has {len(labels)} labels but "
                            f"{path!r} has {len(images)} images ({per_severity} per severity); both files must "
                            "come from the same CIFAR-C release.")
        return images, labels, per_severity

    def batches(self, corruption, severity, batch_size):
        _check_known(corruption, severity)
        images, labels, count = self._load(corruption)
        start = (int(severity) - 1) * count
        stop = start + min(count, self.limit or count)
        labels = labels[start:stop] if len(labels) == len(images) else labels[:stop - start]
        return _array_batches(images[start:stop], labels, batch_size)


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
                            "pass --corrupted-dir with the official CIFAR-10-C folder, or leave it out to "
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

    def batches(self, corruption, severity, batch_size):
        from ar2_tf.data.image_folder import list_classes, list_files

        _check_known(corruption, severity)
        folder = os.path.join(self.root, corruption, str(int(severity)))
        if not os.path.isdir(folder):
            raise UserError(f"ImageNet-C folder {folder!r} is missing; expected "
                            f"{self.root}/<corruption>/<severity>/<class>/*.JPEG, or evaluate fewer corruptions "
                            "with --corruptions.")
        classes = tuple(self.class_names) if self.class_names else list_classes(folder)
        paths, labels = list_files(folder, classes)
        if self.limit:
            paths, labels = paths[:self.limit], labels[:self.limit]
        size = self.image_size

        def decode(path, label):
            image = tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)
            if size:
                resized = tf.image.resize(image, (size, size), antialias=True)
                image = tf.cast(tf.clip_by_value(tf.round(resized), 0, 255), tf.uint8)
            return image, label

        dataset = tf.data.Dataset.from_tensor_slices((paths, labels))
        return dataset.map(decode, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True).batch(batch_size)


def corruption_code_version() -> str:
    """Hash of the corruption implementations, so a code change invalidates generated sets."""
    digest = hashlib.sha256()
    package = os.path.dirname(corruptions.__file__)
    for path in sorted(glob.glob(os.path.join(package, "*.py"))):
        with open(path, "rb") as file:
            digest.update(os.path.basename(path).encode() + file.read())
    try:
        from importlib.metadata import version

        digest.update(version("imagecorruptions-imaug").encode())
    except Exception:  # the reference package is optional for the native backend
        pass
    return digest.hexdigest()[:16]


def split_fingerprint(split, batch_size=1024):
    """(sha256 of every clean image and label in order, image count): identifies a generated set's source."""
    digest, count = hashlib.sha256(), 0
    for images, labels in split.batch(batch_size).as_numpy_iterator():
        digest.update(np.ascontiguousarray(images).tobytes())
        digest.update(labels.astype(np.int64).tobytes())
        count += len(labels)
    if count == 0:
        raise UserError("the clean test split is empty; nothing to corrupt.")
    return digest.hexdigest()[:16], count


class GeneratedSource:
    """Corrupted sets made from the clean test split, cached on disk.

    Args:
        split: unbatched clean `(uint8 image, label)` pairs.
        params, backend: see `ar2_tf.corruptions.corrupt`.
        seed: base seed of the corruption noise.
        cache_dir: folder of the cached `.npy` arrays; None keeps them in memory only.
        verbose: progress bars while generating.
    """

    def __init__(self, split, *, params="cifar", backend="native", seed=0, cache_dir=DEFAULT_CACHE_DIR, verbose=1):
        corruptions.check_choice("params", params, corruptions.PARAM_SETS)
        corruptions.check_choice("backend", backend, corruptions.BACKENDS)
        self.split, self.params, self.backend, self.seed = split, params, backend, int(seed)
        self.cache_dir, self.verbose = cache_dir, verbose
        self._memory = {}
        self._source = None
        self.description = {"kind": "generated", "params": params, "backend": backend, "seed": self.seed,
                            "code": corruption_code_version()}

    def source(self):
        """(fingerprint, count) of the clean split, computed once."""
        if self._source is None:
            self._source = split_fingerprint(self.split)
        return self._source

    def size(self):
        """Images per corrupted set."""
        return self.source()[1]

    def cache_key(self, corruption, severity) -> str:
        """Hash of everything the corrupted pixels depend on."""
        fields = {"corruption": corruption, "severity": int(severity), "params": self.params,
                  "backend": self.backend, "seed": self.seed, "source": self.source()[0],
                  "code": corruption_code_version(), "generation_batch": seeds.EVAL_BATCH_SIZE}
        return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:20]

    def path(self, corruption, severity):
        """The cache folder of one set (`images.npy`, `labels.npy`), or None without a cache."""
        if self.cache_dir is None:
            return None
        return os.path.join(self.cache_dir, f"{corruption}-s{int(severity)}-{self.cache_key(corruption, severity)}")

    def arrays(self, corruption, severity):
        """(images, labels) of one corrupted set: memory-mapped from the cache, else generated (and cached)."""
        _check_known(corruption, severity)
        key = (corruption, int(severity))
        if key in self._memory:
            return self._memory[key]
        folder = self.path(corruption, severity)
        if folder is None:
            self._memory = {key: self._generate(corruption, int(severity), None)}  # one set at a time
            return self._memory[key]
        if not os.path.exists(os.path.join(folder, "labels.npy")):
            self._generate(corruption, int(severity), folder)
        return (np.load(os.path.join(folder, "images.npy"), mmap_mode="r", allow_pickle=False),
                np.load(os.path.join(folder, "labels.npy"), allow_pickle=False))

    def prepare(self, corruption_names, severities):
        """Generates (and caches) every missing set up front; a set that fails is left to `batches` to report."""
        for corruption in corruption_names:
            for severity in severities:
                try:
                    self.arrays(corruption, severity)
                except (UserError, tf.errors.OpError):
                    break

    def _generate(self, corruption, severity, folder):
        """Corrupts the clean split batch by batch; streams into `folder` (atomically) or returns arrays."""

        def corrupt_batch(index, batch):
            images, labels = batch
            noise_seed = seeds.evaluation_noise_seed(self.seed, severity, index)
            corrupted = corruptions.corrupt(images, corruption, severity, noise_seed,
                                            params=self.params, backend=self.backend)
            return corrupted, labels

        batches = self.split.batch(seeds.EVAL_BATCH_SIZE).enumerate()
        batches = batches.map(corrupt_batch, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        count = self.source()[1]
        bar = _progbar(count, f"generating {corruption} s{severity}", self.verbose)
        temporary = f"{folder}.{os.getpid()}.tmp" if folder else None
        images, labels, start = None, np.empty(count, np.int64), 0
        for corrupted, label in batches.prefetch(tf.data.AUTOTUNE).as_numpy_iterator():
            if images is None:
                shape = (count, *corrupted.shape[1:])
                if temporary:
                    os.makedirs(temporary, exist_ok=True)
                    images = np.lib.format.open_memmap(os.path.join(temporary, "images.npy"), "w+", np.uint8, shape)
                else:
                    images = np.empty(shape, np.uint8)
            images[start:start + len(label)] = corrupted
            labels[start:start + len(label)] = label
            start += len(label)
            if bar:
                bar.add(len(label))
        if start != count:
            raise RuntimeError(f"the clean split changed while generating: {start} images, expected {count}")
        if not temporary:
            return images, labels
        images.flush()
        del images
        np.save(os.path.join(temporary, "labels.npy"), labels)
        try:
            os.replace(temporary, folder)  # atomic: a crash never leaves a half-written set under the key
        except OSError:  # another process cached the same set first
            shutil.rmtree(temporary, ignore_errors=True)
        return None

    def batches(self, corruption, severity, batch_size):
        images, labels = self.arrays(corruption, severity)
        return _array_batches(images, labels, batch_size)


def _progbar(target, title, verbose):
    if not verbose:
        return None
    import keras

    print(title)
    return keras.utils.Progbar(target, verbose=verbose)


def open_corrupted_source(corrupted_dir, *, clean_split, dataset, class_names=None, image_size=None, params,
                          backend="native", seed=0, cache_dir=DEFAULT_CACHE_DIR, limit=None, verbose=1):
    """The source a `--corrupted-dir` value names.

    Args:
        corrupted_dir: None (generate from `clean_split`), "tfds" or "tfds:DATA_DIR" (cifar10 only),
            a CIFAR-C folder of .npy files, or an ImageNet-C folder.
        clean_split, dataset, class_names, image_size: the clean test data and what it is.
        params, backend, seed, cache_dir, verbose: generation settings (see `GeneratedSource`).
        limit: first images per severity of an official set (matches `--test-size`).
    """
    if corrupted_dir is None:
        return GeneratedSource(clean_split, params=params, backend=backend, seed=seed, cache_dir=cache_dir,
                               verbose=verbose)
    if corrupted_dir == "tfds" or corrupted_dir.startswith("tfds:"):
        if dataset != "cifar10":
            raise UserError(f"tfds has corrupted test sets for cifar10 only (cifar10_corrupted), not {dataset!r}; "
                            "pass the official folder with --corrupted-dir, or leave it out to generate them.")
        return TFDSSource(data_dir=corrupted_dir[5:] or None, limit=limit)
    if not os.path.isdir(corrupted_dir):
        raise UserError(f"--corrupted-dir {corrupted_dir!r} is not a folder; pass the CIFAR-10-C / CIFAR-100-C "
                        "folder (<corruption>.npy, labels.npy), an ImageNet-C folder, or 'tfds'.")
    if glob.glob(os.path.join(corrupted_dir, "*.npy")):
        return NumpyCSource(corrupted_dir, limit=limit)
    if any(os.path.isdir(os.path.join(corrupted_dir, name)) for name in corruptions.ALL_CORRUPTIONS):
        return ImageNetCSource(corrupted_dir, class_names=class_names, image_size=image_size, limit=limit)
    raise UserError(f"--corrupted-dir {corrupted_dir!r} holds neither <corruption>.npy files (CIFAR-C) nor "
                    "<corruption>/<severity>/<class>/ folders (ImageNet-C).")
