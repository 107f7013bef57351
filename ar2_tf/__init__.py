"""ar2-tf: attention-guided repair (AR2) of image classifiers for corruption robustness.

AR2 aligns the class activation maps (CAMs) of a model on corrupted images with
those of a frozen copy of the pretrained model on clean images (paper Eq. 2),
alternating that refinement with ordinary fine-tuning.
"""

from ar2_tf import quiet

__version__ = "0.1.0"

quiet.note_launch()  # now, while `python -m` still says so: a command starts TensorFlow quietly (ar2_tf/quiet.py)
