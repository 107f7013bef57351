"""ar2-tf: attention-guided repair (AR2) of image classifiers for corruption robustness.

AR2 aligns the class activation maps (CAMs) of a model on corrupted images with
those of a frozen copy of the pretrained model on clean images (paper Eq. 2),
alternating that refinement with ordinary fine-tuning.
"""

from ar2_tf import quiet

__version__ = "0.1.0"

__all__ = ["repair"]

quiet.note_launch()  # now, while `python -m` still says so: a command starts TensorFlow quietly (ar2_tf/quiet.py)


def __getattr__(name):
    """`ar2_tf.repair` (ar2_tf/api.py), imported when first used: `import ar2_tf` stays TensorFlow-free, so
    the commands answer help and flag errors at once."""
    if name == "repair":
        from ar2_tf.api import repair

        return repair
    raise AttributeError(f"module 'ar2_tf' has no attribute {name!r}")
