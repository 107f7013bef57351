"""scripts/paper_cifar10.sh, the paper's CIFAR-10 schedule for one GPU: its flags give the paper's settings (every CI
run, with a stand-in Python that records the command), and its CPU dry run trains end to end (on demand:
`pytest -m scale`, about 60-90 s)."""

import json
import os
import stat
import subprocess
import sys

import pytest

from tests.helpers import ROOT, needs_cifar10, needs_resnet20

SCRIPT = os.path.join(ROOT, "scripts", "paper_cifar10.sh")


def _benchmark_config(argv):
    """The benchmark's arguments and the training config the benchmark builds from `argv` (TensorFlow-free)."""
    from ar2_tf import benchmark, train
    from ar2_tf.runs.config import check

    args, rest = benchmark.build_parser().parse_known_args(argv)
    return args, check(train.config_from_args(train.build_parser().parse_args(rest)))


@pytest.mark.parametrize("mode", [[], ["--dry-run"]])
def test_the_script_runs_the_benchmark_with_the_papers_settings(mode, tmp_path):
    recorded, out = tmp_path / "argv.json", tmp_path / "paper"
    python = tmp_path / "python"
    python.write_text(f"#!{sys.executable}\nimport json, os, sys\n"
                      f"json.dump(sys.argv[1:], open({str(recorded)!r}, 'w'))\n"
                      "os.makedirs(os.environ['OUT'], exist_ok=True)\n"
                      "open(os.path.join(os.environ['OUT'], 'table1.md'), 'w').write('| method |')\n")
    python.chmod(python.stat().st_mode | stat.S_IEXEC)
    env = {**os.environ, "OUT": str(out), "PYTHON": str(python)}
    done = subprocess.run(["bash", SCRIPT, *mode], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    argv = json.loads(recorded.read_text())
    assert argv[:2] == ["-m", "ar2_tf.benchmark"]
    args, config = _benchmark_config(argv[2:])
    assert args.methods == "vanilla,finetune_epochs,ar2,bn_adapt,tent" and args.out == str(out)
    repair = config.repair
    assert (repair.k, repair.alpha, repair.refine_steps, repair.finetune_steps) == (3, 1.0, 1, 1)
    assert config.severity == 3 and config.data_dir.endswith("cifar10_jpeg_bytes_official_order.npz")
    assert config.eval_data_dir.endswith("cifar10_exact_official_subset.npz")
    assert repair.iterations == (1 if mode else 30) and config.batch_size == (64 if mode else 128)


@pytest.mark.scale
@needs_cifar10
@needs_resnet20
def test_dry_run_trains_every_method_with_the_papers_settings_and_prints_table_1(tmp_path):
    out = tmp_path / "paper"
    env = {**os.environ, "OUT": str(out), "PYTHON": sys.executable}
    run = subprocess.run(["bash", SCRIPT, "--dry-run"], env=env, capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stderr[-2000:]
    table = run.stdout[run.stdout.index("| method |"):]
    assert all(row in table for row in ("| vanilla |", "| fine-tune (same epochs) |", "| AR2 |", "| BN adaptation |",
                                        "| TENT (test-time) |"))
    with open(out / "benchmark.json") as file:
        config = json.load(file)["config"]
    repair = config["repair"]
    assert (repair["k"], repair["alpha"], repair["refine_steps"], repair["finetune_steps"]) == (3, 1.0, 1, 1)
    assert config["data_dir"].endswith("cifar10_jpeg_bytes_official_order.npz") and config["severity"] == 3
