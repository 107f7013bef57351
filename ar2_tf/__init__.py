"""ar2-tf: attention-guided repair (AR2) of image classifiers for corruption robustness.

AR2 aligns the class activation maps (CAMs) of a model on corrupted images with
those of a frozen copy of the pretrained model on clean images (paper Eq. 2),
alternating that refinement with ordinary fine-tuning.
"""

from ar2_tf import quiet

__version__ = "0.1.0"

__all__ = ["RepairModel", "callbacks", "corrupted_pairs", "evaluate_robustness", "repair", "robustness_report"]

# Public names -> the module that defines them, imported when first used (`__getattr__`).
_LAZY = {
    "repair": "ar2_tf.api",
    "RepairModel": "ar2_tf.method.repair_model",
    "corrupted_pairs": "ar2_tf.data.pairs",
    "evaluate_robustness": "ar2_tf.evaluation.robustness",
    "robustness_report": "ar2_tf.evaluation.report",
}

quiet.note_launch()  # now, while `python -m` still says so: a command starts TensorFlow quietly (ar2_tf/quiet.py)


def __getattr__(name):
    """The public API (`__all__`), imported when first used: `import ar2_tf` stays TensorFlow-free, so the
    commands answer help and flag errors at once.

    - `repair`: the command path from Python (ar2_tf/api.py);
    - the Keras path: `RepairModel`, `corrupted_pairs`, the callbacks of `ar2_tf.callbacks`,
      `evaluate_robustness` and `robustness_report` (docs/guide/python.md).
    """
    import importlib

    if name == "callbacks":
        return importlib.import_module("ar2_tf.callbacks")
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'ar2_tf' has no attribute {name!r}")
