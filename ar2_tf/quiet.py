"""A quiet TensorFlow start-up: no C++ log noise that reads like a failure on a CPU-only machine.

Importing TensorFlow prints, from C++ and before its log level is even read, lines such as
`WARNING: All log messages before absl::InitializeLog() ...`, `I0000 ... Could not find cuda
drivers` and, when devices are first listed, `E0000 ... failed call to cuInit: UNKNOWN ERROR
(303)`: harmless on a machine without a GPU, alarming to a newcomer. `quiet_start()` imports
TensorFlow and lists its devices with file descriptor 2 captured, drops exactly those start-up
lines (`is_startup_noise`), replays everything else to stderr, and sets `TF_CPP_MIN_LOG_LEVEL=2`
for the rest of the run (TensorFlow's own INFO and WARNING lines off, errors kept).

It does nothing when the user set `TF_CPP_MIN_LOG_LEVEL` themselves (their choice wins, the
start-up lines print as usual) or when TensorFlow is already imported (too late to matter).

`import ar2_tf` notes whether a command is starting (`note_launch`: `python -m ar2_tf.train`,
`python -m tuning`, an installed `ar2-*` script; only then can it tell). The command checks its
flags first, TensorFlow-free, so help and a mistyped flag answer at once, then calls
`ar2_tf.cli.start_tensorflow()`, which starts TensorFlow quietly if a command was launched. A
program that imports ar2_tf as a library gets no TensorFlow import and no log level from it.
"""

import contextlib
import os
import re
import sys
import tempfile

LOG_LEVEL_VARIABLE = "TF_CPP_MIN_LOG_LEVEL"
QUIET_LEVEL = "2"

_GLOG_INFO_OR_WARNING = re.compile(r"^[IW]\d{4} ")
_NOISE = ("All log messages before absl::InitializeLog()", "To enable the following instructions:",
          "failed call to cuInit", "Unable to register cuDNN factory", "Unable to register cuFFT factory",
          "Unable to register cuBLAS factory")


def is_startup_noise(line: str) -> bool:
    """True for TensorFlow's start-up chatter: glog INFO/WARNING lines and the known CUDA-absent lines."""
    return bool(_GLOG_INFO_OR_WARNING.match(line)) or any(text in line for text in _NOISE)


@contextlib.contextmanager
def filtered_stderr(drop):
    """Capture file descriptor 2 (C++ writes included); on exit replay every line where `drop(line)` is false."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            kept = [line for line in capture.read().decode(errors="replace").splitlines(keepends=True)
                    if not drop(line)]
            sys.stderr.write("".join(kept))
            sys.stderr.flush()


def launched_as_a_command() -> bool:
    """True while `python -m <module>` locates its module (`sys.argv[0]` is "-m" until then, the
    documented behaviour) or an installed `ar2-*` console script runs."""
    program = sys.argv[0] if sys.argv else ""
    return program == "-m" or os.path.basename(program).startswith("ar2-")


_launched = False


def note_launch():
    """Remembers whether this process is a command starting (`import ar2_tf` calls it first thing)."""
    global _launched
    _launched = _launched or launched_as_a_command()


def launched() -> bool:
    """Whether `note_launch` saw a command start."""
    return _launched


def quiet_start() -> bool:
    """Import TensorFlow quietly (see the module docstring); True when this call did the quieting."""
    if LOG_LEVEL_VARIABLE in os.environ or "tensorflow" in sys.modules:
        return False
    os.environ[LOG_LEVEL_VARIABLE] = QUIET_LEVEL
    with filtered_stderr(is_startup_noise):
        import tensorflow as tf

        tf.config.list_physical_devices()  # cuInit runs here: its error line is start-up noise too
    return True
