"""The package installs (pyproject.toml) into a fresh virtual environment, and its console scripts work from
any folder: help, a bad flag, and a short demo run."""

import os
import site
import subprocess
import sys

import pytest

from tests.helpers import ROOT, TINY_TRAIN_FLAGS


@pytest.mark.slow
def test_pip_install_in_a_fresh_venv_gives_console_scripts_that_run_outside_the_checkout(tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True)
    python = venv / "bin" / "python"
    # The dependencies come from this environment (no download): a .pth file puts its site-packages after the
    # venv's own, so what `pip install .` writes into the venv is what runs.
    purelib = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             check=True, capture_output=True, text=True).stdout.strip()
    with open(os.path.join(purelib, "dependencies.pth"), "w") as file:
        file.write("\n".join(site.getsitepackages()) + "\n")
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", ROOT],
                   check=True, capture_output=True)
    scripts = sorted(name for name in os.listdir(venv / "bin") if name.startswith("ar2-"))
    assert scripts == ["ar2-benchmark", "ar2-benchmark-view", "ar2-evaluate", "ar2-export", "ar2-precompute",
                       "ar2-train", "ar2-tune"]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "TF_CPP_MIN_LOG_LEVEL")}

    def command(*args, check=True):
        return subprocess.run([str(venv / "bin" / args[0]), *args[1:]], cwd=elsewhere, env=env, capture_output=True,
                              text=True, check=check)

    where = subprocess.run([str(python), "-c", "import ar2_tf, export, tuning; print(ar2_tf.__file__); "
                            "print(ar2_tf.repair.__module__)"],
                           cwd=elsewhere, env=env, capture_output=True, text=True, check=True)
    assert where.stdout.startswith(purelib)  # the installed copy, not the checkout
    assert where.stdout.splitlines()[1] == "ar2_tf.api"  # the Python entry point
    assert "usage: python -m ar2_tf.train" in command("ar2-train", "--help").stdout
    assert command("ar2-export", "--help").returncode == 0
    bad = command("ar2-train", "--preprocessing", "meanstd", "--mean", "120", check=False)
    assert bad.returncode == 2 and bad.stderr.startswith("error: --preprocessing meanstd needs both --mean and --std")
    assert len(bad.stderr.splitlines()) == 1  # one line (a quiet start once TensorFlow runs: tests/test_quiet.py)
    command("ar2-train", *TINY_TRAIN_FLAGS, "--out", "runs/demo")
    assert (elsewhere / "runs" / "demo" / "report.json").is_file()
