"""An offline demo dataset that ships with the project: shapes on textured backgrounds.

Each 32x32 image holds one small object (the class is its shape) at a random
place, in a random colour, over a smooth random background. Only the object
tells the classes apart, so a trained model's CAMs must light up the object:
the demo shows what AR2 aligns without any download. Generation is
deterministic given the seed and takes well under a second.
"""

import numpy as np

CLASS_NAMES = ("disk", "square", "triangle", "ring", "cross", "bar")
IMAGE_SIZE = 32


def _shape_masks(kind, yy, xx, radius):
    """Boolean masks [N, H, W] of one shape kind centred at 0, with per-image radius [N, 1, 1]."""
    ay, ax = np.abs(yy), np.abs(xx)
    distance = np.sqrt(yy**2 + xx**2)
    if kind == "disk":
        return distance <= radius
    if kind == "square":
        return np.maximum(ay, ax) <= radius * 0.8
    if kind == "triangle":
        return (yy <= radius * 0.7) & (yy >= 2 * ax - radius)
    if kind == "ring":
        return (distance <= radius) & (distance >= radius * 0.55)
    if kind == "cross":
        return ((ay <= radius * 0.3) & (ax <= radius)) | ((ax <= radius * 0.3) & (ay <= radius))
    if kind == "bar":
        return (ay <= radius * 0.3) & (ax <= radius)
    raise ValueError(kind)


def make_images(count: int, seed: int):
    """Returns (uint8 images [count, 32, 32, 3], int64 labels [count]), balanced over classes."""
    rng = np.random.default_rng(seed)
    labels = np.arange(count) % len(CLASS_NAMES)
    rng.shuffle(labels)
    grid = np.arange(IMAGE_SIZE, dtype=np.float32)
    # Smooth background: a random colour gradient plus coarse noise upsampled 8x.
    start, end = rng.uniform(40, 200, (2, count, 1, 1, 3))
    ramp = (grid / (IMAGE_SIZE - 1))[None, None, :, None]
    background = start + (end - start) * ramp
    coarse = rng.normal(0, 18, (count, 4, 4, 3))
    background = background + np.kron(coarse, np.ones((1, 8, 8, 1)))
    # Objects: centre kept 7 px from the border, radius 5-8 px, strong random colour.
    centre = rng.uniform(7, IMAGE_SIZE - 8, (count, 2))
    radius = rng.uniform(5, 8, (count, 1, 1))
    yy = grid[None, :, None] - centre[:, 0, None, None]
    xx = grid[None, None, :] - centre[:, 1, None, None]
    mask = np.zeros((count, IMAGE_SIZE, IMAGE_SIZE), bool)
    for index, kind in enumerate(CLASS_NAMES):
        chosen = labels == index
        mask[chosen] = _shape_masks(kind, yy[chosen], xx[chosen], radius[chosen])
    colour = rng.uniform(0, 255, (count, 1, 1, 3))
    colour = np.where(np.abs(colour - background.mean(axis=(1, 2), keepdims=True)) < 60, 255 - colour, colour)
    images = np.where(mask[..., None], colour, background)
    return np.clip(images, 0, 255).astype(np.uint8), labels.astype(np.int64)


def load_demo(train_size: int = 3000, test_size: int = 600, seed: int = 0):
    """The demo splits as (x_train, y_train, x_test, y_test); the test split uses its own seed."""
    x_train, y_train = make_images(train_size, seed)
    x_test, y_test = make_images(test_size, seed + 10_007)
    return x_train, y_train, x_test, y_test
