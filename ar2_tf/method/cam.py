"""Attention maps as pure functions: class activation maps (paper Eq. 1) and Grad-CAM.

- CAM: M_c(x) = sum_k w_k^c f_k(x), `f` the last feature map [B, H, W, K] and
  `w^c` the class weights that follow global average pooling (for a linear head,
  its composed kernel: `ar2_tf.method.attention`). Exact, and cheap.
- Grad-CAM (Selvaraju et al., ICCV 2017), the generalisation of CAM to any head:
  a_k^c = mean_{h,w} dy_c/df_k, map = sum_k a_k^c f_k, y_c the class score before
  the softmax. We leave out Grad-CAM's final ReLU: for global average pooling +
  Dense, dy_c/df_k = w_k^c / (H·W) everywhere, so the map is exactly M_c / (H·W),
  and Eq. 2 compares signed maps under either kind (the l2 normalisation of
  `ar2_tf.method.losses` removes the scale). Computed with a nested gradient
  tape, so an outer tape differentiates through it (refinement trains with it).
"""

import tensorflow as tf


def class_activation_maps(features, kernel, classes):
    """Eq. 1 for chosen classes: M_c(x) = sum_k w_k^c f_k(x).

    Args:
        features: feature maps f, [B, H, W, K].
        kernel: class weights w, [K, num_classes].
        classes: int class indices per image, [B, C].

    Returns:
        float32 CAMs [B, C, H, W] (bias excluded, as in Eq. 1).
    """
    weights = tf.gather(tf.transpose(tf.cast(kernel, tf.float32)), classes)  # [B, C, K]
    return tf.einsum("bhwk,bck->bchw", tf.cast(features, tf.float32), weights)


def all_class_activation_maps(features, kernel):
    """Eq. 1 for every class: [B, H, W, K] x [K, N] -> float32 [B, N, H, W]."""
    return tf.einsum("bhwk,kn->bnhw", tf.cast(features, tf.float32), tf.cast(kernel, tf.float32))


def grad_cam_maps(features, scores, classes):
    """Grad-CAM without the final ReLU (see the module docstring) for chosen classes.

    Args:
        features: feature maps f, [B, H, W, K].
        scores: a function f -> class scores before the softmax [B, num_classes] that treats
            images independently (the head in inference mode).
        classes: int class indices per image, [B, C] (C static).

    Returns:
        float32 maps [B, C, H, W].

    All C classes take one backward pass: f is tiled C times along the batch, so row
    c·B + b asks for class classes[b, c] of image b.
    """
    features = tf.cast(features, tf.float32)
    slots = classes.shape[1]
    tiled = tf.tile(features, [slots, 1, 1, 1])  # [C·B, H, W, K], class slot major
    wanted = tf.reshape(tf.transpose(classes), [-1, 1])  # [C·B, 1]
    with tf.GradientTape() as tape:
        tape.watch(tiled)
        chosen = tf.gather(tf.cast(scores(tiled), tf.float32), wanted, batch_dims=1)
    gradients = tape.gradient(chosen, tiled)  # rows are independent: d(sum)/d(row) = d(own score)/d(row)
    weights = tf.reduce_mean(gradients, axis=[1, 2])  # a_k^c, [C·B, K]
    maps = tf.einsum("nhwk,nk->nhw", tiled, weights)
    shape = tf.shape(features)
    return tf.transpose(tf.reshape(maps, [slots, shape[0], shape[1], shape[2]]), [1, 0, 2, 3])
