"""The one exception type for mistakes in user input.

Library code raises `UserError` when an argument, file or dataset is wrong in a way
the user can fix; command-line entry points print its message (no traceback)
and exit with status 2. Everything else is a bug and keeps its traceback.

Messages speak the library's language: an argument is named by its Python name in
backticks (`batch_size`, `data_dir`: the `TrainConfig` fields, a function's
parameters), which is what a Python caller passes. A command words the same
message in its flags (`UserError.worded`, called by `ar2_tf.cli.run_main` with the
command's parser), so `batch_size` reads --batch-size there; `ar2_tf.repair`
words the config fields its own arguments stand for (`data_dir` is its `train`).
"""

import contextlib
import re

_NAMED = re.compile(r"`([A-Za-z_][A-Za-z0-9_]*)`")  # an argument's name as messages write it


class UserError(Exception):
    """A problem with user input; the message names the problem and the fix."""

    def names(self) -> set:
        """The argument names the message mentions (written in backticks)."""
        return set(_NAMED.findall(str(self)))

    def worded(self, words) -> str:
        """The message in other words (`worded`): a command's flags for the argument names."""
        return worded(str(self), words)


def worded(text: str, words) -> str:
    """`text` (a message, a printed note) with each argument name that `words` ({name: text}) has replaced by its
    text (a command's flag); other names stay as written."""
    return _NAMED.sub(lambda match: words.get(match.group(1), match.group(0)), text)


_spoken = {}  # the running command's words for argument names ({name: flag}); empty when called from Python


@contextlib.contextmanager
def speaking(words):
    """Within it, `note` words argument names as `words` says (`ar2_tf.cli.run_main`: the command's flags)."""
    global _spoken
    previous, _spoken = _spoken, dict(words)
    try:
        yield
    finally:
        _spoken = previous


def note(text: str) -> None:
    """Prints a note for the user (a warning that stops nothing, what a run reused), its argument names in the
    caller's words: Python names from Python, the command's flags under `speaking`."""
    print(worded(text, _spoken), flush=True)


def check_choice(kind: str, value: str, choices, hint: str = "") -> str:
    """Returns `value` if it is one of `choices`, else raises a `UserError`."""
    if value not in choices:
        listed = ", ".join(sorted(choices))
        raise UserError(f"unknown {kind} {value!r}; choose one of: {listed}.{(' ' + hint) if hint else ''}")
    return value


def check_severity(severity) -> int:
    """Returns the severity as an int if it is 1-5, else raises a `UserError`."""
    text = str(severity).strip()
    if not text.isdigit() or not 1 <= int(text) <= 5:
        raise UserError(f"severity must be an integer from 1 to 5, got {severity!r}.")
    return int(text)


def first_line(problem) -> str:
    """The first line of an exception's message (TensorFlow's run on for pages); for TensorFlow's
    "Graph execution error:", the line that says what went wrong, after the Python stack it lists."""
    text = re.sub(r"^\{\{function_node [^}]*\}\}\s*", "", str(problem).strip())  # tf.data's wrapper name
    lines = [line for line in text.splitlines() if line.strip()]
    if lines and lines[0] == "Graph execution error:":
        said = [line for line in lines[1:] if not line.startswith(("Detected at node", "  File "))]
        lines = said or lines
    return lines[0] if lines else repr(problem)
