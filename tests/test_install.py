"""The package installs (pyproject.toml) and its console scripts work from any folder."""

import os
import subprocess
import sys

import pytest

from tests.helpers import ROOT


@pytest.mark.slow
def test_pip_install_gives_console_scripts_that_run_outside_the_checkout(tmp_path):
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                    "--target", str(target), ROOT], check=True, capture_output=True)
    scripts = sorted(os.listdir(target / "bin"))
    assert scripts == ["ar2-benchmark", "ar2-benchmark-view", "ar2-evaluate", "ar2-export", "ar2-precompute",
                       "ar2-train", "ar2-tune"]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {**os.environ, "PYTHONPATH": str(target), "TF_CPP_MIN_LOG_LEVEL": "3"}
    run = subprocess.run([str(target / "bin" / "ar2-train"), "--batch-size", "0"], cwd=elsewhere, env=env,
                         capture_output=True, text=True)
    assert run.returncode == 2 and "error: --batch-size must be positive, got 0." in run.stderr
    where = subprocess.run([sys.executable, "-c", "import ar2_tf, export, tuning; print(ar2_tf.__file__)"],
                           cwd=elsewhere, env=env, capture_output=True, text=True, check=True)
    assert where.stdout.startswith(str(target))
    assert subprocess.run([str(target / "bin" / "ar2-export"), "--help"], cwd=elsewhere, env=env,
                          capture_output=True).returncode == 0
