"""ar2-tf: attention-guided repair (AR2) of image classifiers for corruption robustness.

AR2 aligns the class activation maps (CAMs) of a model on corrupted images with
those of a frozen copy of the pretrained model on clean images (paper Eq. 2),
alternating that refinement with ordinary fine-tuning.
"""

from ar2_tf.quiet import launched_as_a_command, quiet_start

__version__ = "0.1.0"

if launched_as_a_command():  # before the command imports TensorFlow: no C++ start-up noise (ar2_tf/quiet.py)
    quiet_start()
