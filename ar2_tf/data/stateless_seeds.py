"""Every seed formula and the evaluation batch size: the one owner of "which noise does batch i get".

Everything random in a run is a stateless function of the run's seed and the
position of a batch, so a resumed run, a second model evaluated on the same
set and a cached corrupted set all see exactly the same pixels. The formulas
are spread over pipelines, shards, AugMix and the corrupted test sets; they
live here so that no two of them drift apart.

The evaluation batch size is part of the noise of generated test sets (batch i
gets seed (s, i)), hence part of their cache key: a run's before/after report
and `python -m ar2_tf.evaluate` must batch alike to report the same errors.
"""

import functools
import hashlib

import tensorflow as tf

# Images per batch whenever corrupted test images are generated (run reports, the suite, tuning's validation).
EVAL_BATCH_SIZE = 256

# Offsets that keep the noise of different purposes apart for the same base seed.
_EVAL_SEVERITY_STRIDE = 1000  # evaluation set of severity s: base seed + 1000·s
_SHARD_SEVERITY_STRIDE = 7919  # precomputed training shards of severity s: base seed + 7919·s (a prime, not 1000)
_EPOCH_STRIDE = 1_000_003  # shuffle seed of data epoch e: seed·1,000,003 + e


@functools.lru_cache(maxsize=1)
def formula_fingerprint() -> str:
    """Hash of this module's source: every formula, stride and `EVAL_BATCH_SIZE`. Cached corrupted sets are keyed
    by it (`ar2_tf.evaluation.generated_sets`), so a changed formula makes new sets instead of reusing old ones,
    without anyone having to remember a version number."""
    with open(__file__, "rb") as file:
        return hashlib.sha256(file.read()).hexdigest()[:16]


def shuffle_seed(seed: int, epoch: int) -> int:
    """The Python-int shuffle seed of data epoch `epoch`: each epoch's order is fixed by (seed, epoch) alone."""
    return int(seed) * _EPOCH_STRIDE + int(epoch)


def training_noise_seed(seed, epoch, index):
    """Stateless seed of the corrupted (or AugMix) view of training batch `index` of data epoch `epoch`."""
    return tf.stack([tf.cast(epoch, tf.int64) + int(seed), tf.cast(index, tf.int64)])


def evaluation_noise_seed(seed, severity, index):
    """Stateless seed of evaluation batch `index` at `severity`: the same for every model evaluated."""
    return tf.stack([tf.constant(int(seed) + _EVAL_SEVERITY_STRIDE * int(severity), tf.int64),
                     tf.cast(index, tf.int64)])


def shard_noise_seed(seed, severity, index):
    """Stateless seed of batch `index` written into precomputed training shards."""
    return tf.stack([tf.constant(int(seed) + _SHARD_SEVERITY_STRIDE * int(severity), tf.int64),
                     tf.cast(index, tf.int64)])


def shard_order_seeds(seed, epoch):
    """Stateless seeds of data epoch `epoch` over precomputed shards: (file order, record window `index` -> seed)."""
    epoch = tf.cast(epoch, tf.int64)
    file_order = tf.stack([tf.constant(int(seed), tf.int64), epoch])
    return file_order, lambda index: tf.stack([epoch * _EPOCH_STRIDE + int(seed), tf.cast(index, tf.int64)])


def fidelity_noise_seed(seed, severity, start):
    """Stateless seed of the fidelity check's batch starting at image `start` (`ar2_tf.evaluation.corruption_fidelity`)."""
    return tf.stack([tf.constant(seed[0] * _EVAL_SEVERITY_STRIDE + int(severity), tf.int32),
                     seed[1] * 100_000 + tf.cast(start, tf.int32)])


def sample_noise_seed(seed):
    """Stateless seed of the few test images shown as CAM panels in TensorBoard."""
    return tf.constant([int(seed), 0])
