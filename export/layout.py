"""TF Serving's folder layout, written so a running server never sees half a model.

TF Serving watches `<base_path>/<version>/` and loads every folder whose name
is a number. A new version is therefore written into a temporary folder in the
same model folder whose name is not a number (`.tmp-...`, which the server
ignores), and renamed to its version number only once it is complete and
verified: one `rename` on one file system, so the version appears whole or not
at all. A failed export removes its temporary folder; one killed outright
leaves a `.tmp-...` folder that TF Serving ignores and that can be deleted.
"""

import os
import secrets
import shutil

from ar2_tf.errors import UserError

TEMP_PREFIX = ".tmp-"


def existing_versions(model_dir) -> list:
    """The version numbers present in `model_dir` (folders named by a number), sorted."""
    if not os.path.isdir(model_dir):
        return []
    return sorted(int(name) for name in os.listdir(model_dir)
                  if name.isdigit() and os.path.isdir(os.path.join(model_dir, name)))


def choose_version(model_dir, requested=None, force=False) -> int:
    """The version to write: `requested`, or one more than the newest (1 for a new model).

    Raises:
        UserError: `requested` exists and `force` is not set, or is not a positive integer.
    """
    versions = existing_versions(model_dir)
    if requested is None:
        return (versions[-1] + 1) if versions else 1
    if isinstance(requested, bool) or not isinstance(requested, int) or requested < 1:
        raise UserError(f"`version` must be a positive integer, got {requested!r}.")
    if requested in versions and not force:
        raise UserError(f"{os.path.join(model_dir, str(requested))} already exists; leave out `version` to write "
                        f"version {versions[-1] + 1}, or add `force` to replace version {requested}.")
    return requested


def write_version(model_dir, version: int, write, replace=False) -> str:
    """Calls `write(folder)` on a hidden temporary folder, then renames it to `model_dir/<version>`.

    Args:
        model_dir: the model's base path (created if missing).
        version: the version number.
        write: function filling the folder it is given; any exception aborts the export.
        replace: replace an existing version (else an existing one is an error).

    Returns:
        the path of the new version folder.
    """
    os.makedirs(model_dir, exist_ok=True)
    target = os.path.join(model_dir, str(version))
    temporary = _make_temporary(model_dir, f"{version}-")
    try:
        write(temporary)
        _install(temporary, target, replace)
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise
    return target


def _make_temporary(model_dir, label):
    # Not tempfile.mkdtemp: its 0700 mode would hide the model from a server running as another user.
    while True:
        path = os.path.join(model_dir, f"{TEMP_PREFIX}{label}{secrets.token_hex(4)}")
        try:
            os.mkdir(path)  # mode 0777 minus the umask, like any folder the user creates
            return path
        except FileExistsError:
            continue


def _install(temporary, target, replace):
    if not os.path.exists(target):
        os.rename(temporary, target)  # atomic; fails if another export created `target` meanwhile
        return
    if not replace:
        raise UserError(f"{target} appeared while exporting (another export?); it was left untouched. "
                        "Run the export again to write the next version.")
    # Two renames: the old version disappears for an instant, but no reader ever sees a mix of two.
    retired = os.path.join(os.path.dirname(target), f"{TEMP_PREFIX}old-{secrets.token_hex(4)}")
    os.rename(target, retired)
    try:
        os.rename(temporary, target)
    except BaseException:
        os.rename(retired, target)
        raise
    shutil.rmtree(retired, ignore_errors=True)
