"""Attention maths: CAMs (Eq. 1) against a manual sum, Grad-CAM against a per-class tape and against CAM."""

import numpy as np
import tensorflow as tf

from ar2_tf.method import cam
from tests.helpers import manual_cams


def test_cams_equal_manual_weighted_sum_of_feature_maps():
    rng = np.random.default_rng(0)
    features = rng.normal(size=(3, 4, 5, 6)).astype(np.float32)
    kernel = rng.normal(size=(6, 7)).astype(np.float32)
    classes = np.array([[0, 6], [3, 3], [5, 1]])
    got = cam.class_activation_maps(features, kernel, classes).numpy()
    np.testing.assert_allclose(got, manual_cams(features, kernel, classes), rtol=1e-5, atol=1e-5)
    every = cam.all_class_activation_maps(features, kernel).numpy()
    np.testing.assert_allclose(every[np.arange(3)[:, None], classes], got, rtol=1e-5, atol=1e-5)


def _mlp_scores(seed=1, channels=6, classes=7):
    rng = np.random.default_rng(seed)
    w1, w2 = rng.normal(size=(channels, 9)).astype(np.float32), rng.normal(size=(9, classes)).astype(np.float32)
    return lambda f: tf.matmul(tf.nn.relu(tf.matmul(tf.reduce_mean(f, axis=[1, 2]), w1)), w2)


def test_grad_cam_equals_a_per_image_per_class_tape_on_a_non_linear_head():
    rng = np.random.default_rng(2)
    features = tf.constant(rng.normal(size=(3, 4, 5, 6)).astype(np.float32))
    classes = np.array([[0, 6], [3, 3], [5, 1]])
    scores = _mlp_scores()
    got = cam.grad_cam_maps(features, scores, tf.constant(classes)).numpy()
    for b in range(3):
        for j, c in enumerate(classes[b]):
            image = features[b:b + 1]
            with tf.GradientTape() as tape:
                tape.watch(image)
                score = scores(image)[0, c]
            weights = tf.reduce_mean(tape.gradient(score, image)[0], axis=[0, 1]).numpy()
            np.testing.assert_allclose(got[b, j], np.tensordot(image[0].numpy(), weights, axes=1), rtol=1e-4,
                                       atol=1e-5)


def test_grad_cam_is_cam_over_h_times_w_on_global_average_pooling_and_dense():
    rng = np.random.default_rng(3)
    features = rng.normal(size=(2, 4, 5, 6)).astype(np.float32)
    kernel, bias = rng.normal(size=(6, 7)).astype(np.float32), rng.normal(size=7).astype(np.float32)
    classes = tf.constant([[1, 2, 6], [0, 0, 4]])
    grad_cam = cam.grad_cam_maps(features, lambda f: tf.matmul(tf.reduce_mean(f, axis=[1, 2]), kernel) + bias,
                                 classes)
    np.testing.assert_allclose(grad_cam * 20, cam.class_activation_maps(features, kernel, classes), rtol=1e-4,
                               atol=1e-5)


def test_grad_cam_is_differentiable_through_its_own_gradient():
    """Refinement trains through Grad-CAM: the outer gradient includes the second-order path
    (the weights a_k^c depend on f), checked against central finite differences."""
    rng = np.random.default_rng(4)
    features = tf.Variable(rng.normal(size=(1, 2, 2, 6)).astype(np.float64))
    scores = _mlp_scores(seed=5)
    classes = tf.constant([[2, 4]])

    def objective():
        return tf.reduce_sum(tf.square(cam.grad_cam_maps(tf.cast(features, tf.float32), scores, classes)))

    with tf.GradientTape() as tape:
        value = objective()
    gradient = tape.gradient(value, features).numpy().ravel()
    start, step = features.numpy(), 1e-2
    for index in (0, 7, 23):
        numeric = []
        for sign in (1, -1):
            moved = start.copy().ravel()
            moved[index] += sign * step
            features.assign(moved.reshape(start.shape))
            numeric.append(float(objective()))
        features.assign(start)
        assert abs(gradient[index] - (numeric[0] - numeric[1]) / (2 * step)) < 2e-2 * max(1.0, abs(gradient[index]))
