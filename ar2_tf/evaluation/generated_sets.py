"""Corrupted test sets generated from the clean test split: streamed by default, cached on request.

The pixels of a generated set have one definition, `GeneratedSource.stream`:
the clean split in batches of `ar2_tf.data.stateless_seeds.EVAL_BATCH_SIZE`, batch i
corrupted with `stateless_seeds.evaluation_noise_seed(seed, severity, i)` (exactly as
`ar2_tf.data.pipelines.corrupted_pipeline`, so a run's before/after report and
`python -m ar2_tf.evaluate` see the same images).

- Streamed (the default): the set is corrupted while it is read, in a
  `tf.data` pipeline that holds a few batches (`STREAM_PREFETCH` plus the
  batches in flight in the parallel map), so memory does not depend on the
  set's size and nothing is written. Cheap corruptions at CIFAR size cost
  about as much to make again as to read back.
- Cached (`cache_dir`, opt-in): each set is written once as uint8 `.npy`
  arrays under a key that hashes everything the pixels depend on, and read
  back on later runs. The sets of one evaluation must fit in a budget
  (`DEFAULT_CACHE_BUDGET_GB`): ImageNet's 50,000 validation images make
  7.5 GB per set, 565 GB for 15 corruptions x 5 severities.

Cached arrays are read by `npy_batches`, which maps the files inside the
`tf.data` generator from paths given as its arguments: a generator that closed
over a memory map would keep the map (and its resident pages) alive for the
rest of the process, since tf.data keeps the generator's function registered.
"""

import glob
import hashlib
import json
import math
import os
import shutil

import numpy as np
import tensorflow as tf

from ar2_tf import corruptions
from ar2_tf.data import stateless_seeds
from ar2_tf.errors import UserError, check_severity

# A folder to pass as `cache_dir` (caching is opt-in: without one, every generated set is streamed).
DEFAULT_CACHE_DIR = os.path.join(os.path.expanduser("~"), ".cache", "ar2_tf", "corrupted_sets")
DEFAULT_CACHE_BUDGET_GB = 20.0  # disk one evaluation's cached sets may take (`cache_budget_gb`)
STREAM_PREFETCH = 2  # batches made ahead of the models while streaming: memory stays a few batches
_GB = 1e9


def npy_batches(images_path, labels_path, *, start, stop, label_start, batch_size):
    """Batches of images[start:stop] of an .npy file and labels[label_start:...] of another, read slice by slice.

    The generator opens (memory-maps) both files itself, yields copies of the
    slices and drops the maps when it ends: nothing outside it holds a map, so
    each pass's pages are freed with it.
    """
    shape = np.load(images_path, mmap_mode="r", allow_pickle=False).shape  # mapped and dropped at once

    def generate(images_path, labels_path):
        images = np.load(images_path.decode(), mmap_mode="r", allow_pickle=False)
        labels = np.load(labels_path.decode(), mmap_mode="r", allow_pickle=False)
        offset = label_start - start
        for first in range(start, stop, batch_size):
            last = min(first + batch_size, stop)
            # copies: a slice of the map would be a view, and a tensor made from it would keep the whole map
            yield np.array(images[first:last]), np.array(labels[first + offset:last + offset], np.int64)

    signature = (tf.TensorSpec((None, *shape[1:]), tf.uint8), tf.TensorSpec((None,), tf.int64))
    return tf.data.Dataset.from_generator(generate, output_signature=signature,
                                          args=(str(images_path), str(labels_path)))


def _check_cell(corruption, severity):
    corruptions.check_corruption(corruption)
    check_severity(severity)


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
    """Corrupted sets made from the clean test split: streamed by default, or cached on disk.

    Args:
        split: unbatched clean `(uint8 image, label)` pairs.
        params, backend: see `ar2_tf.corruptions.corrupt`.
        seed: base seed of the corruption noise.
        cache_dir: folder of cached `.npy` arrays (opt-in); None streams every set (nothing is written).
        cache_budget_gb: disk the cached sets of one evaluation may take (`prepare` refuses more).
        verbose: progress bars while caching.
    """

    def __init__(self, split, *, params="cifar", backend="native", seed=0, cache_dir=None,
                 cache_budget_gb=DEFAULT_CACHE_BUDGET_GB, verbose=1):
        corruptions.check_choice("params", params, corruptions.PARAM_SETS)
        corruptions.check_choice("backend", backend, corruptions.BACKENDS)
        if cache_budget_gb is None or not cache_budget_gb > 0:
            raise UserError(f"the cache budget must be a positive number of GB, got {cache_budget_gb!r}.")
        self.split, self.params, self.backend, self.seed = split, params, backend, int(seed)
        self.cache_dir, self.cache_budget_gb, self.verbose = cache_dir, float(cache_budget_gb), verbose
        self._source = None
        self.description = {"kind": "generated", "params": params, "backend": backend, "seed": self.seed,
                            "code": corruption_code_version(), "seeds": stateless_seeds.formula_fingerprint()}

    def source(self):
        """(fingerprint, count) of the clean split, computed once (one pass over the clean images)."""
        if self._source is None:
            self._source = split_fingerprint(self.split)
        return self._source

    def size(self):
        """Images per corrupted set (from the split's known size when it has one: no pass needed)."""
        cardinality = int(self.split.cardinality())
        return cardinality if cardinality >= 0 else self.source()[1]

    def cache_key(self, corruption, severity) -> str:
        """Hash of everything the corrupted pixels depend on."""
        fields = {"corruption": corruption, "severity": int(severity), "params": self.params,
                  "backend": self.backend, "seed": self.seed, "source": self.source()[0],
                  "code": corruption_code_version(), "seeds": stateless_seeds.formula_fingerprint(),
                  "generation_batch": stateless_seeds.EVAL_BATCH_SIZE}
        return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:20]

    def path(self, corruption, severity):
        """The cache folder of one set (`images.npy`, `labels.npy`), or None without a cache."""
        if self.cache_dir is None:
            return None
        return os.path.join(self.cache_dir, f"{corruption}-s{int(severity)}-{self.cache_key(corruption, severity)}")

    def set_bytes(self) -> int:
        """Bytes one cached set takes on disk: uint8 pixels + int64 labels."""
        shape = self.split.element_spec[0].shape
        if not shape.is_fully_defined():  # images of a folder before resizing: look at the first one
            shape = next(iter(self.split.take(1)))[0].shape
        return self.size() * (int(np.prod(shape)) + 8)

    def check_budget(self, corruption_names, severities):
        """Raises a `UserError` if caching these sets would take more than the budget."""
        count = len(corruption_names) * len(severities)
        needed = count * self.set_bytes()
        if needed > self.cache_budget_gb * _GB:
            shown = f"{needed / _GB:.1f} GB" if needed >= _GB else f"{needed / 1e6:.1f} MB"
            raise UserError(f"caching {count} corrupted set(s) of {self.size()} images would take {shown} in "
                            f"{self.cache_dir}, over the cache budget of {self.cache_budget_gb:g} GB; leave out "
                            f"`cache_dir` to stream them (nothing is written), or pass `cache_budget_gb` "
                            f"{math.ceil(needed / _GB)}.")

    def prepare(self, corruption_names, severities):
        """Checks the budget, then caches every missing set up front; a set that fails is left to `batches`.

        Without a cache folder there is nothing to prepare: sets are made as they are read.
        """
        if self.cache_dir is None:
            return
        self.check_budget(corruption_names, severities)
        for corruption in corruption_names:
            for severity in severities:
                try:
                    self._cached(corruption, severity)
                except (UserError, tf.errors.OpError):
                    break

    def stream(self, corruption, severity):
        """The set as `(uint8 images, labels)` batches of `stateless_seeds.EVAL_BATCH_SIZE`, corrupted as they are read.

        Batch i gets `stateless_seeds.evaluation_noise_seed(seed, severity, i)`: the one
        definition of the set's pixels, which the cache writes and the stream
        yields, so both give the same errors.
        """
        _check_cell(corruption, severity)
        severity = int(severity)

        def corrupt_batch(index, batch):
            images, labels = batch
            noise_seed = stateless_seeds.evaluation_noise_seed(self.seed, severity, index)
            corrupted = corruptions.corrupt(images, corruption, severity, noise_seed,
                                            params=self.params, backend=self.backend)
            return corrupted, labels

        batches = self.split.batch(stateless_seeds.EVAL_BATCH_SIZE).enumerate()
        return batches.map(corrupt_batch, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)

    def batches(self, corruption, severity, batch_size):
        """`(uint8 images, labels)` batches of `batch_size`: streamed, or read from the cache (made if missing)."""
        _check_cell(corruption, severity)
        if self.cache_dir is None:
            batches = self.stream(corruption, severity)
            if batch_size != stateless_seeds.EVAL_BATCH_SIZE:
                batches = batches.rebatch(batch_size)
            return batches.prefetch(STREAM_PREFETCH)
        folder = self._cached(corruption, severity)
        return npy_batches(os.path.join(folder, "images.npy"), os.path.join(folder, "labels.npy"), start=0,
                           stop=self.size(), label_start=0, batch_size=batch_size)

    def arrays(self, corruption, severity):
        """(images, labels) of one whole set: memory-mapped from the cache, else generated into memory.

        For tests and small sets; evaluation reads `batches`, which never holds a whole set.
        """
        if self.cache_dir is None:
            _check_cell(corruption, severity)
            images, labels = zip(*self.stream(corruption, severity).as_numpy_iterator())
            return np.concatenate(images), np.concatenate(labels).astype(np.int64)
        folder = self._cached(corruption, severity)
        return (np.load(os.path.join(folder, "images.npy"), mmap_mode="r", allow_pickle=False),
                np.load(os.path.join(folder, "labels.npy"), allow_pickle=False))

    def _cached(self, corruption, severity):
        """The cache folder of one set, generated first if missing (within the budget)."""
        _check_cell(corruption, severity)
        folder = self.path(corruption, severity)
        if not os.path.exists(os.path.join(folder, "labels.npy")):
            self.check_budget([corruption], [severity])
            self._generate(corruption, int(severity), folder)
        return folder

    def _generate(self, corruption, severity, folder):
        """Writes the streamed set into `folder`, atomically (a temporary folder renamed into place). Whatever
        stops it, the temporary folder goes (7.5 GB at ImageNet size); a disk that is full or not writable is a
        `UserError`."""
        temporary = f"{folder}.{os.getpid()}.tmp"
        try:
            self._write(corruption, severity, temporary)
            try:
                os.replace(temporary, folder)  # atomic: a crash never leaves a half-written set under the key
            except OSError:  # another process cached the same set first
                pass
        except OSError as error:
            raise UserError(f"could not cache the {corruption} s{severity} set in {self.cache_dir} "
                            f"({error.strerror or error}); free disk space there, pass another `cache_dir`, or "
                            "leave it out to stream the sets (nothing is written).") from None
        finally:
            shutil.rmtree(temporary, ignore_errors=True)  # gone once renamed; else a failed set's files

    def _write(self, corruption, severity, temporary):
        """The streamed set as `images.npy` and `labels.npy` in the folder `temporary`."""
        count = self.size()
        if count == 0:
            raise UserError("the clean test split is empty; nothing to corrupt.")
        bar = _progbar(count, f"caching {corruption} s{severity}", self.verbose)
        os.makedirs(temporary, exist_ok=True)
        images, labels, start = None, np.empty(count, np.int64), 0
        for corrupted, label in self.stream(corruption, severity).prefetch(STREAM_PREFETCH).as_numpy_iterator():
            if images is None:
                images = np.lib.format.open_memmap(os.path.join(temporary, "images.npy"), "w+", np.uint8,
                                                   (count, *corrupted.shape[1:]))
            images[start:start + len(label)] = corrupted
            labels[start:start + len(label)] = label
            start += len(label)
            if bar:
                bar.add(len(label))
        if start != count:
            raise UserError(f"the clean test split gave {start} images while the {corruption} s{severity} set was "
                            f"cached, not the {count} it holds: its files changed meanwhile; re-run once they stay "
                            "put.")
        images.flush()
        del images
        np.save(os.path.join(temporary, "labels.npy"), labels)


def _progbar(target, title, verbose):
    if not verbose:
        return None
    import keras

    print(title)
    return keras.utils.Progbar(target, verbose=verbose)
