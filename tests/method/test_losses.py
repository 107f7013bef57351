"""The alignment loss (Eq. 2) against a direct per-class computation."""

import numpy as np
import pytest

from ar2_tf.method import losses
from ar2_tf.method.cam import class_activation_maps
from tests.helpers import manual_cams


def direct_eq2(clean_f, corrupted_f, reference_f, kernel, reference_kernel, clean_logits, corrupted_logits,
               k, alpha, normalize):
    """Eq. 2 written out: a Python loop over images and over the classes of topk(x) ∪ topk(x')."""

    def cam(features, weights, c):
        m = manual_cams(features[None], weights, np.array([[c]]))[0, 0]
        return m / (np.sqrt((m**2).sum()) + 1e-6) if normalize else m

    total = 0.0
    for b in range(len(clean_f)):
        top_clean = np.argsort(-clean_logits[b])[:k]
        top_corrupted = np.argsort(-corrupted_logits[b])[:k]
        for c in set(top_clean) | set(top_corrupted):
            reference = cam(reference_f[b], reference_kernel, c)
            total += np.mean((cam(clean_f[b], kernel, c) - reference) ** 2)
            total += alpha * np.mean((cam(corrupted_f[b], kernel, c) - reference) ** 2)
    return total / len(clean_f)


@pytest.mark.parametrize("normalization", ["none", "l2"])
@pytest.mark.parametrize("k, alpha", [(1, 1.0), (3, 0.8), (5, 0.0)])
def test_loss_equals_per_class_reference_computation(normalization, k, alpha):
    rng = np.random.default_rng(k)
    shape = (4, 3, 3, 5)
    clean_f, corrupted_f, reference_f = (rng.normal(size=shape).astype(np.float32) for _ in range(3))
    kernel, reference_kernel = (rng.normal(size=(5, 6)).astype(np.float32) for _ in range(2))
    clean_logits = rng.normal(size=(4, 6)).astype(np.float32)
    # Image 0 shares its top classes between views, so the union is smaller than 2k there.
    corrupted_logits = np.concatenate([clean_logits[:1], rng.normal(size=(3, 6))]).astype(np.float32)
    got = losses.cam_alignment_loss(lambda f, c: class_activation_maps(f, kernel, c),
                                    lambda f, c: class_activation_maps(f, reference_kernel, c), clean_f, corrupted_f,
                                    reference_f, clean_logits, corrupted_logits, k=k, alpha=alpha,
                                    normalization=normalization)
    expected = direct_eq2(clean_f, corrupted_f, reference_f, kernel, reference_kernel, clean_logits,
                          corrupted_logits, k, alpha, normalization == "l2")
    np.testing.assert_allclose(float(got), expected, rtol=1e-4)


def test_class_set_is_the_union_of_both_top_k():
    clean = np.array([[5.0, 4, 3, 0, 0], [0, 0, 0, 1, 2]])
    corrupted = np.array([[4.0, 5, 0, 0, 3], [2, 1, 0, 0, 0]])
    classes, mask = losses.select_classes(clean, corrupted, 2)
    chosen = [set(np.asarray(c)[np.asarray(m) > 0]) for c, m in zip(classes, mask)]
    assert chosen == [{0, 1}, {4, 3, 0, 1}]
    assert mask.numpy().sum(axis=1).tolist() == [2, 4]



def test_k_above_the_class_count_takes_every_class_once():
    clean, corrupted = np.array([[0.0, 2, 1]]), np.array([[1.0, 0, 2]])
    classes, mask = losses.select_classes(clean, corrupted, 5)
    assert np.asarray(classes).tolist() == [[1, 2, 0, 2, 0, 1]]  # each view's 3 classes, by score
    assert np.asarray(mask).tolist() == [[1, 1, 1, 0, 0, 0]]  # the union counts each class once


def test_identical_maps_give_zero_loss_and_l2_maps_have_unit_norm():
    rng = np.random.default_rng(0)
    maps = rng.normal(size=(2, 3, 4, 4)).astype(np.float32)
    assert float(losses.alignment_loss(maps, maps, maps, np.ones((2, 3), np.float32), 1.0)) == 0.0
    normed = losses.normalize_cams(maps * 50, "l2").numpy()
    np.testing.assert_allclose(np.sqrt((normed**2).sum(axis=(2, 3))), 1.0, rtol=1e-5)
    with pytest.raises(ValueError, match="unknown CAM normalization"):
        losses.normalize_cams(maps, "max")
