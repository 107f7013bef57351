"""The paper's static corruption mode: a corrupted training set computed once, stored as TFRecord shards.

`write_shards` corrupts the training split once (every image gets one fixed
corrupted view) and stores clean + corrupted image + label per record in
shards `train-SSSSS-of-NNNNN.tfrecord`, next to a `manifest.json` describing
how they were made. Corruption and encoding run batched in a parallel
`tf.data` map. It is resumable: each shard is written under a temporary name
and renamed when complete, finished shards are skipped on the next run (before
any corruption work), and a folder holding a different set is refused.

`static_pipeline` trains from the shards with the batches `repair_pipeline`
yields, `((clean, corrupted), labels)` preprocessed for the model, and the
same determinism: data epoch e reads the shards in an order drawn from
(seed, e) and permutes records within windows with stateless seeds, so a
resumed run (`start_batch`) sees exactly the batches of an uninterrupted one.
"""

import json
import os

import tensorflow as tf

from ar2_tf.choices import ENCODINGS, default_image_size
from ar2_tf.data import stateless_seeds
from ar2_tf.data.pipelines import corrupt_views
from ar2_tf.data.preprocessing import get_preprocessor
from ar2_tf.errors import UserError, check_choice
from ar2_tf.output_files import claim_folder

MANIFEST = "manifest.json"
_JPEG_QUALITY = 95
_SHUFFLE_WINDOW = 1024  # records permuted together when reading
_INTERLEAVE = 16  # shards read at once
# Fields of the manifest that must match the run that trains from the shards.
MATCHED_FIELDS = ("corruption", "severity", "params", "image_size")


def shard_name(index: int, count: int) -> str:
    return f"train-{index:05d}-of-{count:05d}.tfrecord"


def _encode(images, encoding):
    if encoding == "raw":
        return tf.map_fn(lambda image: tf.io.serialize_tensor(image), images, fn_output_signature=tf.string)
    if encoding == "png":
        return tf.map_fn(tf.io.encode_png, images, fn_output_signature=tf.string)
    return tf.map_fn(lambda image: tf.io.encode_jpeg(image, quality=_JPEG_QUALITY), images,
                     fn_output_signature=tf.string)


def _serialize(clean, corrupted, label):
    feature = {"clean": tf.train.Feature(bytes_list=tf.train.BytesList(value=[clean])),
               "corrupted": tf.train.Feature(bytes_list=tf.train.BytesList(value=[corrupted])),
               "label": tf.train.Feature(int64_list=tf.train.Int64List(value=[int(label)]))}
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


def write_shards(split, directory, *, num_examples, class_names, corruption, severity, params, backend="native",
                 seed=0, shard_size=1024, batch_size=32, encoding="png", shuffle_buffer=4096, source=None,
                 force=False, verbose=True) -> dict:
    """Corrupts `split` once and writes it as TFRecord shards; returns the manifest.

    Args:
        split: unbatched (uint8 [H, W, 3] of a fixed size, int64 label) pairs, `num_examples` of them.
        directory: output folder; re-running with the same arguments resumes it.
        class_names: names of the labels, stored in the manifest.
        corruption, severity, params, backend: see `ar2_tf.corruptions.corrupt` ("all" draws one
            of the 15 per batch, as in `ar2_tf.data.pipelines`).
        seed: seed of the record order and of the corruption noise.
        shard_size: records per shard; a multiple of `batch_size`.
        batch_size: images corrupted together (one batched op per batch).
        encoding: one of `ENCODINGS`.
        shuffle_buffer: the split is shuffled once with this buffer, so that a class-sorted
            source (an image-folder tree) is spread over all shards.
        source: free-form description of the data (dataset, folder) kept in the manifest.
    """
    check_choice("encoding", encoding, ENCODINGS)
    if shard_size < 1 or batch_size < 1 or shard_size % batch_size:
        raise UserError(f"`shard_size` ({shard_size}) must be a positive multiple of `batch_size` ({batch_size}).")
    height, width = split.element_spec[0].shape[:2]
    if height is None or width is None:
        raise UserError("precomputing needs images of one fixed size; pass `image_size`.")
    count = -(-num_examples // shard_size)
    manifest = {"format": 1, "num_examples": int(num_examples), "num_shards": count, "shard_size": shard_size,
                "batch_size": batch_size, "encoding": encoding, "image_size": [height, width],
                "corruption": corruption, "severity": int(severity), "params": params, "backend": backend,
                "seed": int(seed), "shuffle_buffer": shuffle_buffer, "class_names": list(class_names),
                "source": source}
    claim_folder(directory, MANIFEST, manifest, outputs=lambda name: name.startswith("train-"), force=force,
                 what="set of shards")

    done = [os.path.exists(os.path.join(directory, shard_name(i, count))) for i in range(count)]
    batches_per_shard = shard_size // batch_size
    done_batches = tf.constant([done[i // batches_per_shard] for i in range(-(-num_examples // batch_size))])

    def corrupt_batch(index, batch):
        images, labels = batch
        noise_seed = stateless_seeds.shard_noise_seed(seed, severity, index)
        corrupted = corrupt_views(images, corruption, severity, noise_seed, params=params, backend=backend)
        return index, _encode(images, encoding), _encode(corrupted, encoding), labels

    batches = split.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=False).batch(batch_size).enumerate()
    batches = batches.filter(lambda index, batch: tf.logical_not(done_batches[index]))  # skip finished shards
    batches = batches.map(corrupt_batch, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    writer, shard = None, None
    for index, clean, corrupted, labels in batches.prefetch(tf.data.AUTOTUNE).as_numpy_iterator():
        if index // batches_per_shard != shard:
            _finish(writer, directory, shard, count, verbose)
            shard = index // batches_per_shard
            writer = tf.io.TFRecordWriter(os.path.join(directory, shard_name(shard, count) + ".tmp"))
        for record in zip(clean, corrupted, labels):
            writer.write(_serialize(*record))
    _finish(writer, directory, shard, count, verbose)
    return manifest


def _finish(writer, directory, shard, count, verbose):
    if writer is None:
        return
    writer.close()
    path = os.path.join(directory, shard_name(shard, count))
    os.replace(path + ".tmp", path)
    if verbose:
        print(f"wrote {path}")


def load_manifest(directory) -> dict:
    """The manifest of a complete shard folder; a UserError names what is missing."""
    path = os.path.join(directory or "", MANIFEST)
    if not directory or not os.path.exists(path):
        raise UserError(f"`precomputed_dir` {directory!r} holds no {MANIFEST}; create the shards first with "
                        "python -m ar2_tf.precompute.")
    with open(path) as file:
        manifest = json.load(file)
    missing = [shard_name(i, manifest["num_shards"]) for i in range(manifest["num_shards"])
               if not os.path.exists(os.path.join(directory, shard_name(i, manifest["num_shards"])))]
    if missing:
        raise UserError(f"{directory!r} is incomplete ({len(missing)} of {manifest['num_shards']} shards missing, "
                        f"e.g. {missing[0]}); re-run the same python -m ar2_tf.precompute command to finish it.")
    return manifest


def check_matches(manifest, *, corruption, severity, params, image_size, directory=""):
    """Raises a UserError if the shards were made for another corruption, severity or size."""
    wanted = {"corruption": corruption, "severity": int(severity), "params": params,
              "image_size": list(image_size)}
    wrong = [f"{key} {manifest[key]!r} (run: {wanted[key]!r})" for key in MATCHED_FIELDS
             if manifest[key] != wanted[key]]
    if wrong:
        raise UserError(f"the shards in {directory!r} were made with {', '.join(wrong)}; precompute a set for this "
                        "run, or change the run's flags to match.")


def _decoder(manifest):
    height, width = manifest["image_size"]
    encoding = manifest["encoding"]

    def decode(data):
        if encoding == "raw":
            image = tf.io.parse_tensor(data, tf.uint8)
        else:
            image = tf.io.decode_image(data, channels=3, expand_animations=False)
        return tf.ensure_shape(image, [height, width, 3])

    return decode


def static_pipeline(directory, *, batch_size, preprocessing, seed=0, start_batch=0, batches_per_epoch=None,
                    window=_SHUFFLE_WINDOW):
    """An endless pipeline of `((clean, corrupted), labels)` batches read from precomputed shards.

    Args:
        directory: a folder written by `write_shards` (complete).
        batch_size: images per batch; each data epoch drops its last partial batch.
        preprocessing: name of the model's preprocessing (see `ar2_tf.data.preprocessing`).
        seed: seed of the reading order.
        start_batch: batches already consumed (resuming).
        batches_per_epoch: the caller's count of batches per data epoch; must equal the
            shards' (a UserError otherwise: the shards hold another subset).
    """
    manifest = load_manifest(directory)
    per_epoch = manifest["num_examples"] // batch_size
    if per_epoch < 1:
        raise UserError(f"the shards hold {manifest['num_examples']} images, fewer than one batch of {batch_size}.")
    if batches_per_epoch is not None and batches_per_epoch != per_epoch:
        raise UserError(f"the shards in {directory!r} hold {manifest['num_examples']} images ({per_epoch} batches of "
                        f"{batch_size}) but this run expects {batches_per_epoch} batches per epoch; use the "
                        "`train_size` the shards were made with.")
    count = manifest["num_shards"]
    files = tf.constant([os.path.join(directory, shard_name(i, count)) for i in range(count)])
    features = {"clean": tf.io.FixedLenFeature([], tf.string), "corrupted": tf.io.FixedLenFeature([], tf.string),
                "label": tf.io.FixedLenFeature([], tf.int64)}
    decode, preprocess, seed = _decoder(manifest), get_preprocessor(preprocessing), int(seed)

    def one_epoch(epoch):
        order_seed, window_seed = stateless_seeds.shard_order_seeds(seed, epoch)
        order = tf.random.experimental.stateless_shuffle(files, seed=order_seed)
        records = tf.data.Dataset.from_tensor_slices(order).interleave(
            tf.data.TFRecordDataset, cycle_length=min(_INTERLEAVE, count), block_length=1,
            num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)

        def permute(index, window_records):  # stateless: Dataset.shuffle would need a Python-int seed
            return tf.random.experimental.stateless_shuffle(window_records, seed=window_seed(index))

        records = records.batch(window).enumerate().map(permute).unbatch()
        return records.batch(batch_size, drop_remainder=True)

    def views(serialized):
        example = tf.io.parse_example(serialized, features)
        clean = tf.map_fn(decode, example["clean"], fn_output_signature=tf.uint8)
        corrupted = tf.map_fn(decode, example["corrupted"], fn_output_signature=tf.uint8)
        return (preprocess(clean), preprocess(corrupted)), example["label"]

    start_epoch, skip = divmod(start_batch, per_epoch) if start_batch else (0, 0)
    batches = tf.data.Dataset.range(start_epoch, 2**62).flat_map(one_epoch).skip(skip)
    return batches.map(views, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)


def check_config(config):
    """Static mode: the shards exist, are complete and match the run's corruption, severity and size."""
    if not config.precomputed_dir:
        raise UserError("`corruption_mode` static needs `precomputed_dir` with shards from python -m ar2_tf.precompute.")
    size = default_image_size(config.dataset, config.image_size)
    manifest = load_manifest(config.precomputed_dir)
    check_matches(manifest, corruption=config.corruption, severity=config.severity, params=config.params,
                  image_size=[size, size] if size else manifest["image_size"], directory=config.precomputed_dir)
    return manifest
