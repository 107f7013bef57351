"""The convolution behind defocus blur (`filters.conv2d`): direct and FFT paths against SciPy, and the trim of
negligible kernel borders."""

import numpy as np
import pytest
import tensorflow as tf
from scipy.ndimage import correlate

from ar2_tf.corruptions import filters
from ar2_tf.corruptions.blur import disk_kernel


def test_trim_drops_only_borders_of_negligible_taps():
    kernel = disk_kernel(3, 0.1)  # a 17x17 array; 9x9 support whose outer ring holds taps of 1e-22 and less
    trimmed = filters._trim(kernel)
    assert trimmed.shape == (7, 7)
    assert kernel.sum() - trimmed.sum() < 1e-20
    wide = disk_kernel(4, 0.5)  # its outer ring's taps (2e-4) matter: kept
    assert filters._trim(wide).shape == (11, 11) and np.isclose(filters._trim(wide).sum(), 1.0)


@pytest.mark.parametrize("radius, alias_blur", [(3, 0.1), (10, 0.5)])  # the direct and the FFT path
def test_conv2d_equals_scipy_correlation_of_the_whole_kernel(radius, alias_blur):
    rng = np.random.default_rng(0)
    x = rng.random((2, 40, 36, 3)).astype(np.float32)
    kernel = disk_kernel(radius, alias_blur)
    got = filters.conv2d(tf.constant(x), [kernel] * 5, tf.constant(1), "reflect101").numpy()
    expected = np.stack([np.stack([correlate(image[..., c].astype(np.float64), kernel, mode="mirror")
                                   for c in range(3)], -1) for image in x])
    assert np.abs(got - expected).max() < 1e-5  # 0.003 grey levels


def test_conv2d_with_a_severity_per_image_uses_each_images_kernel():
    rng = np.random.default_rng(1)
    x = rng.random((2, 24, 20, 3)).astype(np.float32)
    kernels = [disk_kernel(r, a) for r, a in ((0.3, 0.4), (1, 0.2), (0.5, 0.6), (1.5, 0.1), (0.4, 0.5))]  # CIFAR sizes
    got = filters.conv2d(tf.constant(x), kernels, tf.constant([2, 4]), "reflect101").numpy()  # embedded to one size
    for image, severity, out in zip(x, (2, 4), got):
        expected = np.stack([correlate(image[..., c].astype(np.float64), kernels[severity - 1], mode="mirror")
                             for c in range(3)], -1)
        assert np.abs(out - expected).max() < 1e-5
