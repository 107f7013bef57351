"""A quiet start: TensorFlow's C++ start-up lines are dropped, everything else reaches stderr."""

import os
import subprocess
import sys

from ar2_tf.quiet import filtered_stderr, is_startup_noise
from tests.helpers import ROOT

# Lines TensorFlow 2.20 prints on this CPU-only machine at import and at the first device listing.
STARTUP = [
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n",
    "I0000 00:00:1796107608.549489    4580 cudart_stub.cc:31] Could not find cuda drivers on your machine, GPU "
    "will not be used.\n",
    "To enable the following instructions: AVX2 AVX512F FMA, in other operations, rebuild TensorFlow with the "
    "appropriate compiler flags.\n",
    "E0000 00:00:1796107612.461697    4580 cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA error: "
    "Failed call to cuInit: UNKNOWN ERROR (303)\n",
]
REAL = ["E0000 00:00:1796107612.461697    4580 op_kernel.cc:1] OOM when allocating tensor\n",
        "Traceback (most recent call last):\n", "ar2_tf: --alpha must be a finite number\n"]


def test_startup_lines_are_noise_and_real_errors_are_not():
    assert all(is_startup_noise(line) for line in STARTUP)
    assert not any(is_startup_noise(line) for line in REAL)


def test_filtered_stderr_drops_noise_written_by_the_process_and_replays_the_rest(capfd):
    with filtered_stderr(is_startup_noise):
        os.write(2, "".join(STARTUP[:2] + REAL[:1] + STARTUP[2:] + REAL[1:]).encode())  # as C++ writes: fd 2
    assert capfd.readouterr().err == "".join(REAL)


def cli_stderr(extra_env):
    """stderr of a command that starts TensorFlow, then finds its model missing (flags it can check without
    TensorFlow, and --help, are answered before it starts: tests/test_cli.py)."""
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"} | extra_env
    done = subprocess.run([sys.executable, "-m", "ar2_tf.evaluate", "--model", "missing.keras"], cwd=ROOT, env=env,
                          capture_output=True, text=True)
    assert done.returncode == 2, done.stderr
    return done.stderr


def test_commands_start_quietly_unless_the_user_chose_a_log_level():
    assert cli_stderr({}) == ("error: model 'missing.keras' does not exist; pass a .keras/.h5 file or a run "
                              "folder.\n")
    assert "absl::InitializeLog()" in cli_stderr({"TF_CPP_MIN_LOG_LEVEL": "0"})  # the user's level wins


def test_a_library_import_neither_imports_tensorflow_nor_touches_the_log_level():
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    probe = "import os, sys, ar2_tf; print('tensorflow' in sys.modules, 'TF_CPP_MIN_LOG_LEVEL' in os.environ)"
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
