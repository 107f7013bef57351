"""AugMix (Hendrycks et al., ICLR 2020) as batched, graph-safe TensorFlow ops with per-image choices.

An AugMix view of an image x mixes `width` augmentation chains, each of 1-3
(or `depth`) operations drawn uniformly from `OPS`:

    x_aug = (1 − m) · x + m · Σ_i w_i · chain_i(x),   w ~ Dirichlet(α·1), m ~ Beta(α, α)

Each operation draws its own strength `level ~ U(0.1, severity)` and, for the
geometric ones, a random sign. Defaults are the original CIFAR setting
(google-research/augmix `cifar.py`): width 3, depth 1-3, severity 3, α = 1.
Every image of a batch gets its own ops, levels, signs, depths and weights, as
in the original. The ops are batched: the value ops (autocontrast, equalize,
posterize, solarize) are 256-entry tables per image and channel, the geometric
ops (rotate, shear, translate) affine maps per image, so one chain step of a
whole batch is one table lookup and one resampling whatever each image drew.

`OPS` holds only the original default operations. The four that overlap with
the CIFAR-10-C / ImageNet-C test corruptions (brightness, contrast, color,
sharpness: `EXCLUDED_OPS`) are deliberately not implemented, so AugMix never
trains on a test corruption.

Differences from the original, all deliberate:
- everything random is a stateless function of an explicit seed (one per
  batch), so a run sees the same views whether or not it was interrupted;
- geometric ops use TensorFlow's bilinear projective transform with PIL's
  coordinate conventions (pixel centres, rotation about the image centre, zero
  fill); resampling can differ from PIL's by a grey level at some pixels;
- the mix is computed in 0..255 pixel space and left unquantised; the original
  mixes after its affine preprocessing, which is the same since the mixing
  weights are convex.

Why not `keras.layers.AugMix` (Keras 3.15): it applies one chain (same ops,
same weights) to the whole batch; it draws the op sequence with Python's
`random.choice` when the layer is called, so inside a traced `Dataset.map` the
sequence is fixed at trace time; its default `all_ops=True` includes the
overlapping ops; its chains have 0-3 ops; its `factor=0.3` means rotations up
to ±108° and shifts up to 30 % of the image (the original: ±9° and ±3 px at
32 px, severity 3).
"""

import dataclasses
import math

import tensorflow as tf

from ar2_tf.data import stateless_seeds
from ar2_tf.data.pipelines import SHUFFLE_BUFFER, epoch_batches
from ar2_tf.data.preprocessing import get_preprocessor
from ar2_tf.errors import UserError

EXCLUDED_OPS = ("brightness", "color", "contrast", "sharpness")  # overlap with the test corruptions
_MAX_DEPTH = 3


@dataclasses.dataclass(frozen=True)
class AugMixConfig:
    """AugMix's hyperparameters; defaults are the original's CIFAR setting."""

    severity: int = 3  # upper bound of each op's level ~ U(0.1, severity), on the original 0-10 scale
    width: int = 3  # augmentation chains mixed per view
    depth: int = -1  # ops per chain, 1-3; -1: uniform in 1..3 per chain
    alpha: float = 1.0  # Dirichlet(α) chain weights and Beta(α, α) mixing weight
    jsd_weight: float = 12.0  # λ of the Jensen-Shannon consistency loss

    def validate(self):
        if not 1 <= self.severity <= 10:
            raise UserError(f"AugMix severity must be 1-10, got {self.severity}.")
        if self.width < 1 or self.depth not in (-1, 1, 2, 3) or self.alpha <= 0 or self.jsd_weight < 0:
            raise UserError(f"invalid AugMix config {self}: need width >= 1, depth -1 or 1-3, alpha > 0, "
                            "jsd_weight >= 0.")
        return self


def _int_parameter(level, maxval):
    return tf.floor(level * maxval / 10.0)  # the original's int(level * maxval / 10), level > 0


def _float_parameter(level, maxval):
    return level * maxval / 10.0


_RAMP = tf.range(256)


def _histograms(images):
    """Per image and channel value counts: int32 [B, 3, 256]."""
    batch = tf.shape(images)[0]
    return tf.reshape(tf.math.bincount(_table_indices(images), minlength=batch * 768, maxlength=batch * 768),
                      [batch, 3, 256])


def _table_indices(images):
    """Index of each value in the flattened [B, 3, 256] tables."""
    offsets = tf.range(tf.shape(images)[0])[:, None, None, None] * 768 + tf.range(3) * 256
    return tf.cast(images, tf.int32) + offsets


# Value ops: a 256-entry table per image and channel,
# (histograms int32 [B, 3, 256], levels float32 [B]) -> int32 [B, 3, 256].

def autocontrast(histograms, levels):
    """Stretches each channel's [min, max] to [0, 255] (PIL `ImageOps.autocontrast`, no cutoff)."""
    del levels
    present = tf.cast(histograms > 0, tf.int32)
    low = tf.cast(tf.argmax(present, axis=-1), tf.float32)[..., None]
    high = 255.0 - tf.cast(tf.argmax(present[..., ::-1], axis=-1), tf.float32)[..., None]
    stretched = tf.floor((tf.cast(_RAMP, tf.float32) - low) * 255.0 / tf.maximum(high - low, 1.0))
    return tf.where(high > low, tf.cast(tf.clip_by_value(stretched, 0.0, 255.0), tf.int32), _RAMP)


def equalize(histograms, levels):
    """Histogram equalisation per channel (PIL `ImageOps.equalize`'s table)."""
    del levels
    last = 255 - tf.argmax(tf.cast(histograms[..., ::-1] > 0, tf.int32), axis=-1, output_type=tf.int32)
    last_count = tf.gather(histograms, last, batch_dims=2)
    step = ((tf.reduce_sum(histograms, axis=-1) - last_count) // 255)[..., None]
    safe_step = tf.maximum(step, 1)
    equalized = (tf.cumsum(histograms, axis=-1, exclusive=True) + safe_step // 2) // safe_step
    return tf.where(step > 0, tf.clip_by_value(equalized, 0, 255), _RAMP)


def posterize(histograms, levels):
    """Keeps the top 4 − int(level·4/10) bits of each value."""
    bits = 4 - tf.cast(_int_parameter(levels, 4.0), tf.int32)
    masks = 256 - tf.bitwise.left_shift(1, 8 - bits)
    return tf.bitwise.bitwise_and(tf.broadcast_to(_RAMP, tf.shape(histograms)), masks[:, None, None])


def solarize(histograms, levels):
    """Inverts every value at or above 256 − int(level·256/10)."""
    thresholds = 256 - tf.cast(_int_parameter(levels, 256.0), tf.int32)
    return tf.broadcast_to(tf.where(_RAMP >= thresholds[:, None, None], 255 - _RAMP, _RAMP), tf.shape(histograms))


# Geometric ops: PIL `Image.transform(AFFINE, (a, b, c, d, e, f))` coefficients per image,
# (levels, signs float32 [B], height, width) -> (a, b, c, d, e, f), each float32 [B]; output
# pixel (x, y) samples the input at (a·x + b·y + c, d·x + e·y + f) in PIL's pixel-centre
# coordinates.

def rotate(levels, signs, height, width):
    """Rotates by ±int(level·30/10) degrees about the centre (PIL `Image.rotate`)."""
    angle = -signs * _int_parameter(levels, 30.0) * (math.pi / 180.0)
    cos, sin = tf.cos(angle), tf.sin(angle)
    centre_x, centre_y = width / 2.0, height / 2.0
    # PIL: move the centre to the origin, rotate, move it back.
    return (cos, sin, centre_x - cos * centre_x - sin * centre_y,
            -sin, cos, centre_y + sin * centre_x - cos * centre_y)


def shear_x(levels, signs, height, width):
    one, zero = tf.ones_like(levels), tf.zeros_like(levels)
    return one, signs * _float_parameter(levels, 0.3), zero, zero, one, zero


def shear_y(levels, signs, height, width):
    one, zero = tf.ones_like(levels), tf.zeros_like(levels)
    return one, zero, zero, signs * _float_parameter(levels, 0.3), one, zero


def translate_x(levels, signs, height, width):
    """Shifts by ±int(level·(W/3)/10) pixels."""
    one, zero = tf.ones_like(levels), tf.zeros_like(levels)
    return one, zero, signs * _int_parameter(levels, width / 3.0), zero, one, zero


def translate_y(levels, signs, height, width):
    one, zero = tf.ones_like(levels), tf.zeros_like(levels)
    return one, zero, zero, zero, one, signs * _int_parameter(levels, height / 3.0)


# The original's default operation list, in its order: (kind, function).
OPS = {
    "autocontrast": ("value", autocontrast),
    "equalize": ("value", equalize),
    "posterize": ("value", posterize),
    "rotate": ("affine", rotate),
    "solarize": ("value", solarize),
    "shear_x": ("affine", shear_x),
    "shear_y": ("affine", shear_y),
    "translate_x": ("affine", translate_x),
    "translate_y": ("affine", translate_y),
}


def _affine(images, coefficients):
    """Bilinear resampling of uint8 images by per-image PIL affine coefficients; outside is 0."""
    a, b, c, d, e, f = coefficients
    # PIL's coordinates put pixel centres at +0.5; TensorFlow's at integers.
    c, f = c + 0.5 * (a + b - 1.0), f + 0.5 * (d + e - 1.0)
    zeros = tf.zeros_like(a)
    out = tf.raw_ops.ImageProjectiveTransformV3(
        images=tf.cast(images, tf.float32), transforms=tf.stack([a, b, c, d, e, f, zeros, zeros], axis=1),
        output_shape=tf.shape(images)[1:3], fill_value=0.0, interpolation="BILINEAR", fill_mode="CONSTANT")
    return tf.cast(tf.clip_by_value(tf.round(out), 0.0, 255.0), tf.uint8)


def apply_ops(images, op_indices, levels, signs):
    """Image b gets op `list(OPS)[op_indices[b]]` with its own level and sign; -1: unchanged.

    One table lookup (identity for the geometric ops) then one resampling (identity for
    the value ops) cover every image whatever its op: two passes over the batch.
    """
    height, width = images.shape[1], images.shape[2]
    tables = tf.broadcast_to(_RAMP, [tf.shape(images)[0], 3, 256])
    histograms = _histograms(images)
    one, zero = tf.ones_like(levels), tf.zeros_like(levels)
    coefficients = (one, zero, zero, zero, one, zero)
    for index, (kind, op) in enumerate(OPS.values()):
        chosen = op_indices == index
        if kind == "value":
            tables = tf.where(chosen[:, None, None], op(histograms, levels), tables)
        else:
            coefficients = tuple(tf.where(chosen, new, old)
                                 for new, old in zip(op(levels, signs, height, width), coefficients))
    images = tf.cast(tf.gather(tf.reshape(tables, [-1]), _table_indices(images)), tf.uint8)
    return _affine(images, coefficients)


def apply_op(images, name, levels, signs):
    """One op of `OPS` on every image of a uint8 batch [B, H, W, 3]; levels, signs: float32 [B]."""
    index = list(OPS).index(name)
    return apply_ops(images, tf.fill(tf.shape(levels), index), levels, signs)


def _per_image(values):
    return tf.reshape(values, [-1, 1, 1, 1])


def _gamma(shape, alpha, seed):
    return tf.random.stateless_gamma(shape, seed, alpha=tf.constant(alpha, tf.float32))


def sample_mixing(seed, batch, config: AugMixConfig):
    """The random choices of one AugMix view of each of `batch` images, from the stateless `seed`.

    Returns a dict of tensors: "ops" int32 [B, width, 3] (indices into `OPS`), "levels" and
    "signs" float32 [B, width, 3], "depths" int32 [B, width], "weights" float32 [B, width]
    (Dirichlet(α)), "mix" float32 [B] (Beta(α, α)).
    """
    seeds = tf.random.experimental.stateless_split(seed, 6)
    steps = [batch, config.width, _MAX_DEPTH]
    if config.depth > 0:
        depths = tf.fill(steps[:2], config.depth)
    else:
        depths = tf.random.stateless_uniform(steps[:2], seeds[0], 1, _MAX_DEPTH + 1, dtype=tf.int32)
    weights = _gamma(steps[:2], config.alpha, seeds[1])
    beta = _gamma([batch, 2], config.alpha, seeds[2])
    return {
        "ops": tf.random.stateless_uniform(steps, seeds[3], 0, len(OPS), dtype=tf.int32),
        "levels": tf.random.stateless_uniform(steps, seeds[4], 0.1, float(config.severity)),
        "signs": tf.where(tf.random.stateless_uniform(steps, seeds[5]) < 0.5, -1.0, 1.0),
        "depths": depths,
        "weights": weights / tf.reduce_sum(weights, axis=1, keepdims=True),
        "mix": beta[:, 0] / tf.reduce_sum(beta, axis=1),
    }


def augment_and_mix(images, seed, config: AugMixConfig = AugMixConfig()):
    """One AugMix view of each uint8 image [B, H, W, 3] (H, W static): float32 in 0..255, unquantised."""
    images = tf.convert_to_tensor(images)
    if images.shape.rank != 4 or None in images.shape[1:] or images.dtype != tf.uint8:
        raise UserError(f"AugMix takes uint8 [B, H, W, 3] images of static size, got {images.dtype.name} "
                        f"{images.shape}.")
    batch = tf.shape(images)[0]
    choice = sample_mixing(seed, batch, config)
    mixed = tf.zeros(tf.shape(images), tf.float32)
    for chain in range(config.width):
        augmented = images
        for step in range(_MAX_DEPTH):
            ops = tf.where(step < choice["depths"][:, chain], choice["ops"][:, chain, step], -1)
            augmented = apply_ops(augmented, ops, choice["levels"][:, chain, step], choice["signs"][:, chain, step])
        mixed += _per_image(choice["weights"][:, chain]) * tf.cast(augmented, tf.float32)
    mix = _per_image(choice["mix"])
    return (1.0 - mix) * tf.cast(images, tf.float32) + mix * mixed


def augmix_views(images, seed, config: AugMixConfig = AugMixConfig()):
    """The two independent AugMix views of the JSD loss, from one stateless seed."""
    first, second = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
    return augment_and_mix(images, first, config), augment_and_mix(images, second, config)


def augmix_pipeline(split, *, batch_size, preprocessing, total_batches, seed=0,
                    config: AugMixConfig = AugMixConfig(), start_batch=0, shuffle_buffer=SHUFFLE_BUFFER):
    """`((clean, augmix_1, augmix_2), labels)` batches number `start_batch` to `total_batches`, preprocessed.

    The batches are `ar2_tf.data.pipelines.epoch_batches`, exactly those of `repair_pipeline`
    (same seed, same shuffle, last partial batch dropped), so AugMix sees the same images
    in the same batches as fine-tuning and AR2; batch i of data epoch e draws its views
    from the stateless seed (seed + e, i).
    """
    config.validate()
    preprocess = get_preprocessor(preprocessing)

    def views(epoch, index, batch):
        images, labels = batch
        first, second = augmix_views(images, stateless_seeds.training_noise_seed(seed, epoch, index), config)
        return (preprocess(images), preprocess(first), preprocess(second)), labels

    # Batches are chosen (and skipped when resuming) before the augmentation map.
    batches = epoch_batches(split, batch_size=batch_size, seed=seed, total_batches=total_batches,
                            start_batch=start_batch, shuffle_buffer=shuffle_buffer)
    return batches.map(views, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)
