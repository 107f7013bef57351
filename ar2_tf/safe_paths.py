"""Names that become path components can never leave the output directory.

Class names come from dataset folders and files, corruption, run and export
model names from flags: all of them end up in output paths. Three checks:

- `safe_name` refuses a name that is not one plain path component (`..`,
  separators, absolute paths, NUL, a leading `~`), for names the user typed;
- `sanitize_name` maps any text to a safe component, for names that come from
  data (a class folder called `../x` becomes `_x`);
- `safe_join` joins components under a root and refuses a result that
  resolves outside it (a symbolic link inside the root that points elsewhere).
"""

import hashlib
import os
import pathlib
import re
import unicodedata

from ar2_tf.errors import UserError

# Longest file name most file systems accept (ext4, APFS, NTFS: 255).
MAX_NAME_LENGTH = 255
ALLOWED_PATTERN = (f"one path component of at most {MAX_NAME_LENGTH} characters: not empty, not '.' or '..', "
                   "no '/', '\\', NUL or other control characters, no leading '~', no drive ('C:')")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_DRIVE = re.compile(r"^[A-Za-z]:")
_UNSAFE_RUN = re.compile(r"[^A-Za-z0-9._-]+")
# Sanitised names are kept well under MAX_NAME_LENGTH so callers can add suffixes (".png", "_s5").
_SANITIZED_LENGTH = 128


def _problem(name: str):
    """Why `name` is not one safe path component, or None."""
    if not name:
        return "it is empty"
    if name in (".", ".."):
        return f"{name!r} means a directory, not a name"
    if "/" in name or "\\" in name:
        return "it contains a path separator"
    if "\x00" in name:
        return "it contains a NUL character"
    if _CONTROL.search(name):
        return "it contains a control character"
    if name.startswith("~"):
        return "it starts with '~' (a home directory)"
    if _DRIVE.match(name) or os.path.isabs(name):
        return "it is an absolute path"
    if len(name) > MAX_NAME_LENGTH:
        return f"it is {len(name)} characters long"
    return None


def safe_name(name: str, kind: str) -> str:
    """Returns `name` unchanged if it is one plain path component, else raises a `UserError`.

    Args:
        name: the value that will become a file or folder name.
        kind: what the name is ("run name", "corruption name", ...), for the message.
    """
    if not isinstance(name, str):
        raise UserError(f"{kind} must be a string, got {type(name).__name__} {name!r}.")
    problem = _problem(name)
    if problem:
        raise UserError(f"{kind} {name!r} cannot be used as a file name because {problem}; use {ALLOWED_PATTERN} "
                        "(letters, digits, '.', '_' and '-' are always safe).")
    return name


def sanitize_name(name) -> str:
    """Maps arbitrary text to a safe path component matching `[A-Za-z0-9._-]+`.

    Accents are dropped ("café" -> "cafe"), every run of other characters
    becomes one "_", leading and trailing dots are removed (no hidden files, no
    "." or ".."), and the result is cut to 128 characters. It is never empty:
    text with nothing usable left ("Ωμέγα", "..", "") becomes "_" and 8 hex
    digits of its SHA-256, so such names stay apart. Other names can still
    collide ("a b" and "a/b" both give "a_b"): add the class index where names
    must stay distinct.
    """
    text = unicodedata.normalize("NFKD", str(name)).encode("ascii", "ignore").decode("ascii")
    text = _UNSAFE_RUN.sub("_", text).strip(".")[:_SANITIZED_LENGTH].rstrip(".")
    if text.strip("_") or (text and text == name):  # a name that was already safe stays as it is
        return text
    return "_" + hashlib.sha256(str(name).encode("utf-8", "surrogatepass")).hexdigest()[:8]


def safe_join(root, *names) -> pathlib.Path:
    """Returns the resolved `root/names...`, refusing anything that lands outside `root`.

    Each of `names` must pass `safe_name` (one component each: pass "a", "b",
    not "a/b"). The joined path is then resolved (following symbolic links;
    it need not exist yet) and refused if it is not inside the resolved root.

    Raises:
        UserError: a name is not a plain component, or the path escapes `root`.
    """
    base = pathlib.Path(root).resolve()
    for name in names:
        safe_name(name, "path component")
    joined = base.joinpath(*names)
    try:
        resolved = joined.resolve()
    except (OSError, RuntimeError) as error:  # RuntimeError: a symbolic link loop (Python < 3.13)
        raise UserError(f"cannot resolve {joined} ({error}); remove the looping symbolic link.") from None
    if resolved != base and base not in resolved.parents:
        raise UserError(f"{joined} resolves to {resolved}, outside the output directory {base}: a symbolic link "
                        f"on the way points elsewhere. Remove the link or choose another output directory.")
    return resolved
