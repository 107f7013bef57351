"""The CAM alignment loss (paper Eq. 2), as pure functions.

    L = sum_{c in C} MSE(M_c(x; θ), M_c(x; θ_ref)) + α · MSE(M_c(x'; θ), M_c(x; θ_ref)),
    C = topk(x) ∪ topk(x'),

averaged over the batch. x is the clean image, x' its corrupted view, θ the
model being repaired and θ_ref the frozen pretrained copy. The MSE averages
over the H x W positions of one map.

Two choices the paper leaves open are arguments here (docs/method/implementation.md):
- `normalization`: "l2" scales each map (per image, per class) to unit L2 norm
  before the MSE; "none" uses raw CAMs. Raw CAM magnitudes grow with the
  feature scale, which made Eq. 2 diverge at ordinary learning rates in our
  pilot; unit-L2 maps compare *where* the model looks, not how strongly.
- the class set's source: the logits passed in decide whose top-k forms C.
"""

import tensorflow as tf

CAM_NORMALIZATIONS = ("l2", "none")
_EPSILON = 1e-6  # keeps an all-zero map (dead ReLU features) finite under L2 scaling


def normalize_cams(cams, normalization: str):
    """Scales CAMs [B, C, H, W] per (image, class) map: "l2" to unit norm, "none" unchanged."""
    if normalization == "none":
        return cams
    if normalization == "l2":
        norm = tf.sqrt(tf.reduce_sum(tf.square(cams), axis=[2, 3], keepdims=True))
        return cams / (norm + _EPSILON)
    raise ValueError(f"unknown CAM normalization {normalization!r}; choose one of {CAM_NORMALIZATIONS}")


def select_classes(clean_logits, corrupted_logits, k: int):
    """The class set C = topk(x) ∪ topk(x') per image, as fixed-size tensors. With k at or above the class
    count, each view's top k is every class.

    Returns:
        classes: int32 [B, 2k], the clean top-k followed by the corrupted top-k (k at most the class count).
        mask: float32 [B, 2k], 0 where a corrupted top-k class repeats a clean
            one, so each class of the union counts once.
    """
    k = min(k, clean_logits.shape[-1] or k)  # a model with fewer classes than k: all of them
    clean_top = tf.math.top_k(clean_logits, k).indices
    corrupted_top = tf.math.top_k(corrupted_logits, k).indices
    repeated = tf.reduce_any(corrupted_top[:, :, None] == clean_top[:, None, :], axis=2)
    mask = tf.concat([tf.ones_like(clean_top, tf.float32), 1.0 - tf.cast(repeated, tf.float32)], axis=1)
    return tf.concat([clean_top, corrupted_top], axis=1), mask


def alignment_loss(clean_cams, corrupted_cams, reference_cams, mask, alpha: float):
    """Eq. 2 from CAMs [B, C, H, W] of the three passes and the class mask [B, C]."""
    clean_term = tf.reduce_mean(tf.square(clean_cams - reference_cams), axis=[2, 3])
    corrupted_term = tf.reduce_mean(tf.square(corrupted_cams - reference_cams), axis=[2, 3])
    per_class = clean_term + alpha * corrupted_term
    return tf.reduce_mean(tf.reduce_sum(mask * per_class, axis=1))


def cam_alignment_loss(maps, reference_maps, clean_features, corrupted_features, reference_features, clean_logits,
                       corrupted_logits, *, k: int, alpha: float, normalization: str = "l2"):
    """Eq. 2 from feature maps: picks C, computes only those 2k maps per view, returns the loss.

    Args:
        maps: θ's attention, (features [B, H, W, K], classes [B, C]) -> maps [B, C, H, W]
            (`HeadAttention.maps`: exact CAMs, or Grad-CAM for non-linear heads); θ's head is
            frozen during refinement.
        reference_maps: θ_ref's attention, alike; it differs from `maps` once a fine-tuning
            phase has updated θ's head.
        clean_features, corrupted_features: θ's feature maps of x and x', [B, H, W, K].
        reference_features: θ_ref's feature map of x, [B, H, W, K].
        clean_logits, corrupted_logits: the logits whose top-k define C.
        k, alpha, normalization: see the module docstring.
    """
    classes, mask = select_classes(clean_logits, corrupted_logits, k)
    both = normalize_cams(maps(tf.concat([clean_features, corrupted_features], axis=0),
                               tf.concat([classes, classes], axis=0)), normalization)  # one pass for both views
    clean_cams, corrupted_cams = tf.split(both, 2)
    reference_cams = tf.stop_gradient(normalize_cams(reference_maps(reference_features, classes), normalization))
    return alignment_loss(clean_cams, corrupted_cams, reference_cams, mask, alpha)
