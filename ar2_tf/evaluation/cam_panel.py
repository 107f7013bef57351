"""The CAM panel of a robustness report: a few fixed test images, clean and corrupted, and each model's attention.

Row i is test image i (the first `CAM_IMAGES` of the test split, so every report of the same data shows the same
images): the clean image, the same image as the evaluation corrupted it, then each model's class activation map
(paper Eq. 1) of the image's true class on the corrupted image, half-blended over it
(`ar2_tf.method.callbacks.attention_tiles`). Only models with exact CAMs take part: those whose head is global
average pooling followed by linear layers (`ar2_tf.method.head`); `why_no_cam` says in one sentence why another
model has none.
"""

import dataclasses
import textwrap

import numpy as np
import tensorflow as tf

from ar2_tf.data.preprocessing import get_preprocessor
from ar2_tf.errors import UserError
from ar2_tf.evaluation import figures, tables
from ar2_tf.method.attention import HeadAttention
from ar2_tf.method.callbacks import PANEL_TILE, attention_tiles
from ar2_tf.method.head import build_backbone, describe, find_head

CAM_IMAGES = 4  # rows: the first test images
CAM_TILE = PANEL_TILE  # smallest tile side in pixels: a 32-pixel CIFAR image is drawn 4x, nearest neighbour
CAM_SEVERITY = 3  # the severity shown, when it was evaluated (else the middle evaluated one)


@dataclasses.dataclass(frozen=True)
class PanelImages:
    """The panel's test images.

    Attributes:
        clean: uint8 [N, H, W, 3], the first N test images.
        corrupted: uint8 [N, H, W, 3], the same images as the evaluation corrupted them.
        labels: int [N], their true classes (the class each CAM is of).
        corruption, severity: what corrupted them.
        class_names: one name per class, or None (classes are then shown by index).
    """

    clean: np.ndarray
    corrupted: np.ndarray
    labels: np.ndarray
    corruption: str
    severity: int
    class_names: tuple = None


def panel_severity(severities) -> int:
    """`CAM_SEVERITY` if it is among `severities`, else the middle one of them."""
    ordered = sorted(int(s) for s in severities)
    return CAM_SEVERITY if CAM_SEVERITY in ordered else ordered[len(ordered) // 2]


def panel_images(clean_split, source, corruption, severity, class_names=None, count=CAM_IMAGES):
    """The first `count` images of the clean split and of the source's (corruption, severity) set.

    Args:
        clean_split: unbatched `(uint8 image, label)` pairs, the evaluation's clean test images.
        source: the evaluation's corrupted-set source (`ar2_tf.evaluation.corrupted_sets`).

    Returns:
        `PanelImages`, or a sentence saying why there are none (an official set whose first images are not the
        clean split's: a seeded subset of the test split).
    """
    clean, labels = next(iter(clean_split.batch(count)))
    corrupted, corrupted_labels = next(iter(source.batches(corruption, int(severity), count)))
    if not np.array_equal(labels.numpy(), corrupted_labels.numpy()[:len(labels)]):
        return ("No CAM panel: the corrupted set's first images are not the clean test split's first images (a "
                "subset of an official corrupted set), so no clean image can be shown beside its corrupted one.")
    return PanelImages(clean.numpy(), corrupted.numpy()[:len(labels)], labels.numpy(), corruption, int(severity),
                       tuple(class_names) if class_names is not None else None)


def why_no_cam(classifier):
    """None when `classifier` has exact CAMs, else the reason, as the end of a sentence."""
    try:
        head = find_head(classifier)
    except UserError as error:
        return f"its head could not be found ({error})"
    if not head.linear:
        return (f"its head ({describe(head)}) is not global average pooling followed by linear layers, so it has "
                "no exact class activation map")
    return None


def class_activation_maps(classifier, preprocessing, images, classes):
    """Eq. 1 of each image's class: float32 [N, h, w], from `classifier`'s feature map and linear head."""
    head = find_head(classifier)
    attention = HeadAttention(classifier, head, "cam")
    features = build_backbone(classifier, head)(get_preprocessor(preprocessing)(tf.constant(images)),
                                                training=False)
    return attention.maps(features, tf.constant(classes, tf.int32)[:, None])[:, 0]


def plot_cam_panel(images: PanelImages, models, path, tile=CAM_TILE):
    """Draws the panel of `models` [(label, classifier, preprocessing)] on `images` into the PNG `path`; returns
    its tiles' side in pixels (the PNG's size: `figures.panel_grid_figsize`)."""
    maps = [class_activation_maps(classifier, preprocessing, images.corrupted, images.labels)
            for _, classifier, preprocessing in models]
    panels = attention_tiles(images.clean, images.corrupted, maps, tile).numpy()
    side = panels.shape[1]
    width = max(8, int(side / figures.GRID_DPI * 72 / (0.6 * 9)))  # characters a title line holds over a tile
    corrupted = f"{tables.SHORT_NAMES.get(images.corruption, images.corruption)}, severity {images.severity}"
    # a run's label ("ar2:gaussian_noise") may wrap after its colon; a word wider than a tile is cut
    columns = ["clean", corrupted] + [f"{label.replace(':', ': ')}: CAM" for label, _, _ in models]
    columns = [textwrap.fill(title, width) for title in columns]
    names = images.class_names or [f"class {i}" for i in range(int(images.labels.max()) + 1)]
    rows = [f"#{i}: {names[int(label)]}" for i, label in enumerate(images.labels)]
    figures.plot_panel_grid(
        panels, columns, path, row_titles=rows, title="Attention on corrupted test images",
        caption=(f"The first {len(rows)} test images, clean and under {images.corruption} (severity "
                 f"{images.severity}), and each model's class activation map of the true class on the corrupted "
                 "image (red: high), half-blended over it."))
    return side
