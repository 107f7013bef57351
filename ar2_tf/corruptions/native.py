"""Native backend (placeholder): falls back to the reference backend until the TF ops land."""

from ar2_tf.corruptions.reference import corrupt_reference


def corrupt_native(images, name, severity, seed, params):
    # Temporary: the reference backend (ImageNet parameters) for every parameter set.
    return corrupt_reference(images, name, severity, seed)
