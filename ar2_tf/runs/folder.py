"""Run folders: the config that made a result, atomic writes, and refusing to mix two runs.

A run folder holds `config.json` (the full config, package versions, seed),
`checkpoints/`, `logs/`, and when finished `model.keras` and `report.json`.
Re-running the same command with the same `--out` resumes or reuses it; a
different config in the same folder is refused unless `--force`.
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


def prepare_run_dir(out, config: dict, force=False) -> str:
    """Creates or reopens run folder `out` for `config`; returns its absolute path.

    Raises:
        UserError: `out` is not writable, or holds a different run's config (without `force`).
    """
    out = os.path.abspath(out)
    try:
        os.makedirs(out, exist_ok=True)
        probe = tempfile.NamedTemporaryFile(dir=out)
        probe.close()
    except OSError as error:
        raise UserError(f"cannot write to --out {out!r} ({error.strerror}); choose a writable folder.") from None
    path = os.path.join(out, "config.json")
    if os.path.exists(path):
        with open(path) as file:
            previous = json.load(file).get("config")
        if previous != json.loads(json.dumps(config, default=str)):
            if not force:
                changed = sorted(k for k in set(previous or {}) | set(config)
                                 if (previous or {}).get(k) != config.get(k))
                raise UserError(f"--out {out!r} holds a different run (changed: {', '.join(changed)}). Use another "
                                "--out, or --force to discard that run and start over.")
            remove_outputs(out, ("checkpoints", "logs", "report.json", "model.keras", "before.json"))
    write_json_atomic(path, {"config": config, "environment": environment()})
    return out


def remove_outputs(out: str, names) -> None:
    """Deletes the files and folders `names` inside `out` (those that exist): what `--force` discards."""
    for name in names:
        target = os.path.join(out, name)
        if os.path.isdir(target):
            shutil.rmtree(target)
        elif os.path.exists(target):
            os.remove(target)
