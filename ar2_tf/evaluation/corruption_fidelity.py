"""Fidelity of the native corruptions: against the reference package, and on a pretrained model.

`compare_with_reference` corrupts the same images with both backends (ImageNet parameters)
and returns per-(corruption, severity) statistics: the mean absolute difference between the
two outputs (meaningful for deterministic corruptions) and, for each backend, the mean and
standard deviation of the corrupted pixels and their PSNR against the clean images (the
distributional check for random corruptions).

`model_errors` measures a classifier's top-1 error on natively corrupted images per
corruption and severity (the CIFAR-10-C check against reference numbers measured with the reference generators).

`python scripts/corruption_fidelity.py` prints both as the tables of docs/results/corruptions.md.
"""

import dataclasses

import numpy as np
import tensorflow as tf

from ar2_tf.corruptions import ALL_CORRUPTIONS, BENCHMARK_CORRUPTIONS, corrupt
from ar2_tf.data import stateless_seeds
from ar2_tf.data.stateless_seeds import EVAL_BATCH_SIZE
from ar2_tf.models.batchnorm_folding import fold_batchnorm

# Outputs are identical up to float round-off, interpolation details or JPEG codecs.
DETERMINISTIC = ("brightness", "contrast", "saturate", "pixelate", "jpeg_compression",
                 "defocus_blur", "zoom_blur", "gaussian_blur")


@dataclasses.dataclass(frozen=True)
class Comparison:
    name: str
    severity: int
    mad: float          # mean |native - reference| in grey levels, per pixel value
    mean: tuple         # (native, reference) mean pixel value
    std: tuple          # (native, reference) std of pixel values
    psnr: tuple         # (native, reference) PSNR in dB against the clean images


def psnr(clean, corrupted) -> float:
    mse = np.mean((clean.astype(np.float64) - corrupted.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else float(10 * np.log10(255.0 ** 2 / mse))


def compare_with_reference(images, names=ALL_CORRUPTIONS, severities=(1, 2, 3, 4, 5), seed=(0, 1)):
    """images: uint8 [N,H,W,3] NumPy. Returns a list of `Comparison`, ImageNet parameters."""
    rows = []
    for name in names:
        for severity in severities:
            outs = [corrupt(images, name, severity, tf.constant(seed), params="imagenet", backend=b).numpy()
                    for b in ("native", "reference")]
            rows.append(Comparison(
                name, severity,
                mad=float(np.abs(outs[0].astype(np.float64) - outs[1]).mean()),
                mean=tuple(float(o.mean()) for o in outs),
                std=tuple(float(o.std()) for o in outs),
                psnr=tuple(psnr(images, o) for o in outs)))
    return rows


def model_errors(model, images, labels, names=BENCHMARK_CORRUPTIONS, severities=(1, 2, 3, 4, 5),
                 params="cifar", batch_size=EVAL_BATCH_SIZE, seed=(0, 1)):
    """Top-1 error (%) of `model` (input x / 255) per corruption, mean over severities; plus 'clean'.

    Batch b (from image `start` = b·batch_size) of severity s is corrupted with the stateless seed
    (1000·seed[0] + s, 100000·seed[1] + start), in a parallel `tf.data` map; one compiled function
    classifies every batch, with BatchNorm folded in (`ar2_tf.models.batchnorm_folding`).
    """
    labels = np.asarray(labels).reshape(-1)
    spec = tf.TensorSpec([None, *images.shape[1:]], tf.uint8)
    network = fold_batchnorm(model)
    predict = tf.function(lambda x: tf.argmax(network(tf.cast(x, tf.float32) / 255.0, training=False), -1),
                          input_signature=[spec])
    clean = tf.data.Dataset.from_tensor_slices(images).batch(batch_size)

    def error(batches):
        predicted = np.concatenate([predict(x).numpy() for x in batches.prefetch(tf.data.AUTOTUNE)])
        return 100.0 * float(np.mean(predicted != labels))

    def corrupted(name, severity):
        def transform(index, x):
            batch_seed = stateless_seeds.fidelity_noise_seed(seed, severity, tf.cast(index, tf.int32) * batch_size)
            return corrupt(x, name, severity, batch_seed, params=params)

        return clean.enumerate().map(transform, num_parallel_calls=tf.data.AUTOTUNE)

    result = {"clean": error(clean)}
    for name in names:
        result[name] = float(np.mean([error(corrupted(name, severity)) for severity in severities]))
    return result


def upsampled_cifar(path: str, count: int, size: int = 224) -> np.ndarray:
    """`count` real CIFAR-10 test images (original pixels) resized bicubically to size x size, uint8."""
    x = np.load(path)["x_test"][:count]
    return tf.cast(tf.clip_by_value(tf.round(tf.image.resize(x, (size, size), "bicubic")), 0, 255), tf.uint8).numpy()


# Measured with the reference CIFAR-10-C generator: the shared ResNet-20 on the 1,017 original-pixel CIFAR-10
# test images, error % averaged over severities 1-5.
REFERENCE_RESNET20_ERRORS = {
    "clean": 7.4, "gaussian_noise": 56.3, "shot_noise": 46.3, "impulse_noise": 48.1, "defocus_blur": 10.9,
    "glass_blur": 50.4, "motion_blur": 18.9, "zoom_blur": 13.7, "snow": 23.3, "frost": 27.2, "fog": 16.7,
    "brightness": 9.7, "contrast": 25.2, "elastic_transform": 17.2, "pixelate": 26.9, "jpeg_compression": 24.3,
}
# The same measurement's mean over the 15 (of unrounded errors; the rounded values above average 27.67).
REFERENCE_RESNET20_MEAN = 27.7
