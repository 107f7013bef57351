"""How every command writes its outputs: atomic files, JSON reads with a fix, and claiming an output folder.

A command's output folder (`out`) is claimed with an identity (the config that makes
its results): re-running the same command reopens it (resume or reuse), a
different identity is refused with the fields that changed, unless `force`
discards the previous outputs. Run folders (`ar2_tf.runs.run_folder`), tuning
searches and precomputed shards all claim their folders here.
"""

import json
import os
import platform
import shutil
import tempfile

from ar2_tf.errors import UserError


def write_json_atomic(path, data):
    """Writes JSON to a temporary file in the same folder, then renames it into place."""
    folder = os.path.dirname(os.path.abspath(path))
    with tempfile.NamedTemporaryFile("w", dir=folder, suffix=".tmp", delete=False) as file:
        json.dump(data, file, indent=2, sort_keys=True, default=str)
        temporary = file.name
    os.replace(temporary, path)


def read_json(path, fix: str):
    """The JSON in `path`; a missing or unreadable file raises UserError ending with `fix`."""
    try:
        with open(path) as file:
            return json.load(file)
    except (OSError, json.JSONDecodeError) as error:
        raise UserError(f"could not read {path!r} ({error}); {fix}") from None


def save_model_atomic(model, path):
    """Saves a Keras model to `path` via a temporary file, so a crash never leaves half a file."""
    temporary = f"{path}.tmp.keras"
    model.save(temporary)
    os.replace(temporary, path)


def environment() -> dict:
    """Package versions recorded next to every result, so it can be re-run."""
    import keras
    import numpy
    import tensorflow

    import ar2_tf

    return {"python": platform.python_version(), "tensorflow": tensorflow.__version__,
            "keras": keras.__version__, "numpy": numpy.__version__, "ar2_tf": ar2_tf.__version__}


def remove_outputs(out: str, names) -> None:
    """Deletes the files and folders `names` inside `out` (those that exist): what `force` discards."""
    for name in names:
        target = os.path.join(out, name)
        if os.path.isdir(target):
            shutil.rmtree(target)
        elif os.path.exists(target):
            os.remove(target)


def _as_json(value):
    return json.loads(json.dumps(value, default=str))


def claim_folder(out, identity_file, identity, *, outputs, force=False, what="run", key=None, upgrade=None) -> str:
    """Creates or reopens output folder `out` for `identity`; returns its absolute path.

    `identity_file` inside `out` records the identity (under `key`, with the
    package versions, or as the whole file when `key` is None). A folder that
    records another identity is refused, unless `force`, which first deletes
    `outputs` (names, or a predicate on names). `upgrade`, if given, maps a
    recorded identity (a dict) to today's terms before the comparison (fields
    added since it was written take their defaults).

    Raises:
        UserError: `out` is not writable, or holds a different `what` (without `force`).
    """
    out = os.path.abspath(out)
    try:
        os.makedirs(out, exist_ok=True)
        tempfile.NamedTemporaryFile(dir=out).close()
    except OSError as error:
        raise UserError(f"cannot write to `out` {out!r} ({error.strerror}); choose a writable folder.") from None
    path = os.path.join(out, identity_file)
    identity = _as_json(identity)
    if os.path.exists(path):
        recorded = read_json(path, f"delete it, or pass `force` to start over in {out!r}.")
        previous = recorded.get(key) if key else recorded
        if upgrade is not None and isinstance(previous, dict):
            previous = upgrade(previous)
        if previous != identity:
            if not force:
                previous = previous if isinstance(previous, dict) else {}
                changed = sorted(k for k in set(previous) | set(identity) if previous.get(k) != identity.get(k))
                raise UserError(f"`out` {out!r} holds a different {what} (changed: {', '.join(changed)}). Use "
                                "another `out`, or `force` to discard it and start over.")
            names = [n for n in os.listdir(out) if outputs(n)] if callable(outputs) else outputs
            remove_outputs(out, [*names, identity_file])
    write_json_atomic(path, {key: identity, "environment": environment()} if key else identity)
    return out
