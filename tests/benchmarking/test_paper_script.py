"""bench/paper_cifar10.sh, the paper's CIFAR-10 schedule for one GPU, runs end to end in its CPU dry run."""

import json
import os
import subprocess
import sys

import pytest

from tests.helpers import ROOT, needs_cifar10, needs_resnet20


@pytest.mark.slow
@needs_cifar10
@needs_resnet20
def test_dry_run_trains_every_method_with_the_papers_settings_and_prints_table_1(tmp_path):
    out = tmp_path / "paper"
    env = {**os.environ, "OUT": str(out), "PYTHON": sys.executable}
    run = subprocess.run(["bash", os.path.join(ROOT, "bench", "paper_cifar10.sh"), "--dry-run"], env=env,
                         capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stderr[-2000:]
    table = run.stdout[run.stdout.index("| method |"):]
    assert all(row in table for row in ("| vanilla |", "| fine-tune (same epochs) |", "| AR2 |", "| BN adaptation |",
                                        "| TENT (test-time) |"))
    with open(out / "benchmark.json") as file:
        config = json.load(file)["config"]
    repair = config["repair"]
    assert (repair["k"], repair["alpha"], repair["refine_steps"], repair["finetune_steps"]) == (3, 1.0, 1, 1)
    assert config["data_dir"].endswith("cifar10_jpeg_bytes_official_order.npz") and config["severity"] == 3
