"""A classifier's identity by content: two models with this digest compute the same function.

A repair run whose clean-error guard kept the pretrained weights saves them as its model, so an evaluation of
several runs often holds the same classifier under several names; `ar2_tf.evaluation.suite` measures it once.
"""

import hashlib
import json


def model_digest(model) -> str:
    """SHA-256 of the model's architecture (`get_config`) and of every weight's name, shape, dtype and values."""
    digest = hashlib.sha256(json.dumps(model.get_config(), sort_keys=True, default=str).encode())
    for weight in model.weights:
        value = weight.numpy()
        digest.update(f"{weight.path}:{value.shape}:{value.dtype}".encode())
        digest.update(value.tobytes())
    return digest.hexdigest()
