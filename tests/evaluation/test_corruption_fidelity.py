"""Fidelity of the native corruptions against the imagecorruptions reference (ImageNet parameters,
224 px real images) and, slow, of the CIFAR parameters on the pretrained ResNet-20.

Deterministic corruptions must match the reference within 0.5 grey levels mean absolute
difference; random ones must match its distribution: mean and standard deviation of the
corrupted pixels and their PSNR against the clean images, within the tolerances of
`TOLERANCES` (set from the spread between two reference runs with different seeds).
"""

import importlib.resources

import numpy as np
import pytest
import tensorflow as tf

from ar2_tf.corruptions import BENCHMARK_CORRUPTIONS, corrupt, geometry, spatter, weather
from ar2_tf.evaluation.corruption_fidelity import (
    DETERMINISTIC,
    REFERENCE_RESNET20_ERRORS,
    REFERENCE_RESNET20_MEAN,
    compare_with_reference,
    model_errors,
    upsampled_cifar,
)
from tests.helpers import CIFAR10_EXACT, RESNET20, needs_cifar10, needs_resnet20

DATA, MODEL = CIFAR10_EXACT, RESNET20
needs_data = needs_cifar10

# (mean, std, PSNR dB): largest allowed |native - reference| on 16 images at 224 px.
TOLERANCES = {
    "gaussian_noise": (1.0, 0.5, 0.15), "shot_noise": (1.0, 0.5, 0.15), "impulse_noise": (1.0, 0.5, 0.15),
    "speckle_noise": (1.0, 0.5, 0.15), "elastic_transform": (1.5, 1.0, 0.5), "motion_blur": (3.0, 1.5, 1.0),
    "snow": (3.0, 2.0, 0.5), "spatter": (2.0, 1.5, 1.0), "fog": (8.0, 4.0, 1.5), "frost": (20.0, 6.0, 2.5),
    "glass_blur": (1.5, 1.0, 0.5),
}
# Per image, frost draws one of 6 pictures whose mean brightness ranges from 90 to 207, and fog one
# plasma map: their tolerances are wide, so test_frost_pictures and test_plasma_statistics check
# those ingredients exactly or over many draws.


@pytest.fixture(scope="module")
def images224():
    return upsampled_cifar(DATA, 16)


@needs_data
@pytest.mark.parametrize("name", DETERMINISTIC)
def test_deterministic_corruptions_match_reference(name, images224):
    for row in compare_with_reference(images224[:2], [name]):
        assert row.mad <= 0.5, (row.severity, row.mad)


@needs_data
@pytest.mark.parametrize("name", sorted(set(TOLERANCES) - {"glass_blur"}))
def test_random_corruptions_match_reference_distribution(name, images224):
    _check_distribution(name, images224)


@needs_data
@pytest.mark.slow
def test_glass_blur_matches_reference_distribution(images224):
    _check_distribution("glass_blur", images224[:4])


def _check_distribution(name, images):
    tol_mean, tol_std, tol_psnr = TOLERANCES[name]
    for row in compare_with_reference(images, [name]):
        assert abs(row.mean[0] - row.mean[1]) <= tol_mean, row
        assert abs(row.std[0] - row.std[1]) <= tol_std, row
        assert abs(row.psnr[0] - row.psnr[1]) <= tol_psnr, row


@pytest.mark.parametrize("radius, sigma", [(10, 3), (20, 15), (6, 2)])
@pytest.mark.parametrize("size", [32, 224])
def test_motion_blur_kernel_matches_reference_for_fixed_angles(radius, sigma, size):
    from imagecorruptions import corruptions as reference

    x = np.random.default_rng(1).integers(0, 256, (3, size, size, 3)).astype(np.uint8)
    angles = np.array([-44.0, 7.5, 30.0], np.float32)
    expected = np.stack([reference._motion_blur(im, radius, sigma, a) for im, a in zip(x, angles)])
    n = 3
    weights, dy, dx = geometry.motion_taps(tf.fill([n], float(radius)), tf.fill([n], float(sigma)),
                                           tf.constant(angles), size, size, 2 * radius + 1)
    got = geometry.motion_blur(tf.constant(x, tf.float32), weights, dy, dx).numpy()
    np.testing.assert_allclose(got, expected, atol=1e-3)


@pytest.mark.parametrize("params, size", [("cifar", 32), ("imagenet", 224)])
def test_frost_pictures_match_opencv(params, size):
    cv2 = pytest.importorskip("cv2")
    bank, sizes = weather.frost_bank(params, size, size)
    assert len(sizes) == (5 if params == "cifar" else 6)  # make_cifar_c draws randint(5)
    folder = importlib.resources.files("imagecorruptions") / "frost"
    for k, name in enumerate(weather.FROST_FILES[:len(sizes)]):
        with importlib.resources.as_file(folder / name) as path:
            picture = cv2.imread(str(path))
        if params == "cifar":
            expected = cv2.resize(picture, (0, 0), fx=0.2, fy=0.2)
        else:
            expected = cv2.resize(picture, (int(np.ceil(picture.shape[1] * 1.1)), int(np.ceil(picture.shape[0] * 1.1))),
                                  interpolation=cv2.INTER_CUBIC)
        got = bank[k, :sizes[k][0], :sizes[k][1]].astype(int)
        assert got.shape == expected.shape
        assert np.abs(got - expected[..., ::-1]).mean() <= 0.05


def test_plasma_statistics_match_reference():
    from imagecorruptions import corruptions as reference

    # A map's mean varies a lot from draw to draw (its coarsest levels dominate): 200 draws each.
    np.random.seed(0)
    for decay in (2.0, 1.4):
        expected = np.stack([reference.plasma_fractal(256, decay)[:224, :224] for _ in range(200)])
        got = weather.plasma_fractal(200, 256, tf.fill([200], decay), tf.constant([3, 4], tf.int64)).numpy()
        got = got[:, :224, :224]
        assert abs(got.mean() - expected.mean()) < 0.04
        assert abs(got.std(axis=(1, 2)).mean() - expected.std(axis=(1, 2)).mean()) < 0.015


def test_spatter_opencv_steps_match():
    cv2 = pytest.importorskip("cv2")
    rng = np.random.default_rng(0)
    layers = np.stack([np.floor(cv2.GaussianBlur((rng.random((64, 64)) * 255).astype(np.float32), (0, 0), s))
                       for s in (1, 2, 4)])
    layers[layers < 120] = 0
    edges = spatter.canny(tf.constant(layers, tf.float32)).numpy()
    np.testing.assert_array_equal(edges, np.stack([cv2.Canny(np.uint8(l), 50, 150) > 0 for l in layers]))
    dist = spatter.distance_to_edges(tf.constant(edges)).numpy()
    expected = np.stack([np.minimum(cv2.distanceTransform(np.uint8(255 - 255 * e), cv2.DIST_L2, 5), 20)
                         for e in edges])
    np.testing.assert_allclose(dist, expected, atol=1e-4)
    levels = np.floor(dist)
    np.testing.assert_array_equal(spatter.equalize_hist(tf.constant(levels, tf.float32), 21).numpy(),
                                  np.stack([cv2.equalizeHist(np.uint8(d)) for d in levels]))


@pytest.mark.slow
def test_glass_blur_copies_match_reference_statistics():
    from imagecorruptions.corruptions import _shuffle_pixels_njit_glass_blur as reference_shuffle

    from ar2_tf.corruptions.blur import _glass_shuffle

    size = 32
    grid = np.zeros((size, size, 3), np.uint8)
    grid[..., 0], grid[..., 1] = np.arange(size)[:, None], np.arange(size)[None, :]
    for max_delta, iterations in ((1, 1), (1, 2), (2, 1), (4, 2)):
        expected = np.stack([reference_shuffle(size, size, grid.copy(), (0.5, max_delta, iterations), s)
                             for s in range(40)])
        got = _glass_shuffle(tf.constant(np.repeat(grid[None], 40, 0), tf.float32), max_delta, iterations,
                             tf.constant([1, 2], tf.int64)).numpy().astype(np.uint8)
        for out in (expected, got):
            out.setflags(write=False)
        distinct = [np.mean([len(np.unique(o[..., 0].astype(int) * size + o[..., 1])) for o in out])
                    for out in (expected, got)]
        moved = [np.mean((out[..., :2] != grid[..., :2]).any(-1)) for out in (expected, got)]
        assert abs(distinct[0] - distinct[1]) < 0.02 * size * size, (max_delta, iterations, distinct)
        assert abs(moved[0] - moved[1]) < 0.02, (max_delta, iterations, moved)


# On demand (`pytest -m fidelity`, pytest.ini), not in the default run: it is half of one worker's time in CI, and
# the ImageNet-parameter tests above and the CIFAR-path oracles below guard the same code on every run. Run it
# with any change to the CIFAR parameters or a corruption op (docs/results/corruptions.md).
@pytest.mark.fidelity
@pytest.mark.xdist_group("resnet20_fidelity")  # the longest test: its own worker slot, not its module's
@needs_resnet20
@needs_data
def test_cifar_parameters_reproduce_reference_resnet20_errors():
    import keras

    data = np.load(DATA)
    model = keras.saving.load_model(MODEL, compile=False)
    errors = model_errors(model, data["x_test"], data["y_test"].reshape(-1))
    assert abs(errors["clean"] - REFERENCE_RESNET20_ERRORS["clean"]) < 0.2
    for name in BENCHMARK_CORRUPTIONS:
        assert abs(errors[name] - REFERENCE_RESNET20_ERRORS[name]) <= 3.0, (name, errors[name])
    mean = np.mean([errors[n] for n in BENCHMARK_CORRUPTIONS])
    assert abs(mean - REFERENCE_RESNET20_MEAN) <= 1.0, mean


# The reference backend has only the ImageNet parameters; where make_cifar_c.py takes a different code
# path (Pillow BOX upsampling in pixelate, a centred crop in zoom, an OpenCV affine warp in elastic),
# small oracles built from the same libraries check the CIFAR path.

@needs_data
def test_cifar_pixelate_matches_pillow_box_resizes():
    from PIL import Image

    x = np.load(DATA)["x_test"][:4]
    for severity, c in enumerate((0.95, 0.9, 0.85, 0.75, 0.65), start=1):
        expected = np.stack([np.asarray(Image.fromarray(im).resize((int(32 * c), int(32 * c)), Image.BOX)
                                        .resize((32, 32), Image.BOX)) for im in x])
        got = corrupt(x, "pixelate", severity, tf.constant([0, 0]), params="cifar").numpy()
        np.testing.assert_array_equal(got, expected)


@needs_data
def test_cifar_zoom_blur_matches_centre_cropped_scipy_zoom():
    from scipy.ndimage import zoom

    x = np.load(DATA)["x_test"][:2]
    for severity, stop in enumerate((1.06, 1.11, 1.16, 1.21, 1.26), start=1):
        expected = []
        for im in x.astype(np.float32) / 255:
            total = im.copy()
            for z in np.arange(1, stop, 0.01):
                crop = int(np.ceil(32 / z))
                top = (32 - crop) // 2
                zoomed = zoom(im[top:top + crop, top:top + crop], (z, z, 1), order=1)
                trim = (zoomed.shape[0] - 32) // 2
                total += zoomed[trim:trim + 32, trim:trim + 32]
            expected.append(np.clip(total / (len(np.arange(1, stop, 0.01)) + 1), 0, 1) * 255)
        got = corrupt(x, "zoom_blur", severity, tf.constant([0, 0]), params="cifar").numpy()
        assert np.abs(got.astype(float) - np.uint8(np.stack(expected))).mean() <= 0.05


def test_affine_warp_matches_opencv():
    cv2 = pytest.importorskip("cv2")
    from ar2_tf.corruptions.digital import _affine_sources

    # A smooth image: OpenCV rounds warp coordinates slightly differently (within 1/32 px).
    image = cv2.GaussianBlur(np.random.default_rng(2).random((32, 32, 3)).astype(np.float32), (0, 0), 1.5)
    src = np.float32([[26, 26], [26, 6], [6, 6]])
    dst = src + np.float32([[1.3, -2.1], [0.4, 2.2], [-1.7, 0.9]])
    expected = cv2.warpAffine(image, cv2.getAffineTransform(src, dst), (32, 32), borderMode=cv2.BORDER_REFLECT_101)
    rows, cols = _affine_sources(tf.constant(src[None]), tf.constant(dst[None]), 32, 32)
    got = geometry.bilinear(tf.constant(image[None]), rows, cols, "reflect101").numpy()[0]
    assert np.abs(got - expected).mean() < 5e-4  # 0.13 grey levels
