"""Several seeds: mean ± std cells, the seed-paired AR2 − fine-tuning interval, and a tiny two-seed benchmark."""

import json
import math
import os
import sys

import pytest

from ar2_tf import benchmark
from ar2_tf.benchmarking import report, seeds
from ar2_tf.cli import run_main
from ar2_tf.runs.config import RepairConfig
from ar2_tf.runs.methods import budget
from tests.helpers import tiny_classifier

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "bench"))
import budget_table  # noqa: E402  (bench/budget_table.py)


def test_mean_std_and_the_student_t_interval_by_hand():
    assert seeds.mean_std([1.0, 2.0, None, 3.0]) == (2.0, 1.0, 3)
    assert seeds.mean_std([4.0]) == (4.0, None, 1)
    # d = 1, 2, 3: mean 2, sd 1, t(0.975, 2) = 4.302653 -> 2 ± 4.302653 / sqrt(3)
    row = seeds.paired_interval([1.0, 2.0, 3.0])
    half = 4.302652729911275 / math.sqrt(3)
    assert row["low"] == pytest.approx(2 - half) and row["high"] == pytest.approx(2 + half)
    assert row["verdict"] == "tie" and row["n"] == 3
    assert seeds.paired_interval([-3.0, -3.2, -2.9])["verdict"] == "AR2 lower"
    assert seeds.paired_interval([1.0, 1.1, 1.3])["verdict"] == "fine-tuning lower"
    assert seeds.paired_interval([1.0])["low"] is None
    assert seeds.format_cell(16.54, 0.44, 3) == "16.5 ± 0.4" and seeds.format_cell(7.4, None, 1) == "7.4"


def _entry(clean, ce):
    return {"clean": clean, "summary": {"unnormalized": {"ce": ce}}}


def test_seed_tables_pair_ar2_with_fine_tuning_seed_by_seed():
    labels = {key: {"label": key, "budget": budget(key, RepairConfig())} for key in ("vanilla", "finetune_epochs", "ar2")}
    runs = [{"key": "vanilla", "method": "vanilla", "corruption": "all", "seed": s} for s in (0, 1)]
    entries = {"vanilla": _entry(7.0, {"fog": 20.0, "contrast": 30.0})}
    for seed, (ft, ar2) in enumerate(((10.0, 11.0), (12.0, 12.5))):
        for method, ce in (("finetune_epochs", ft), ("ar2", ar2)):
            key = f"{method}_fog_seed{seed}"
            runs.append({"key": key, "method": method, "corruption": "fog", "seed": seed})
            entries[key] = _entry(8.0 + seed, {"fog": ce, "contrast": 25.0})
    built, paired = report.seed_tables(runs, entries, ["fog"], ["fog", "contrast"], labels, [0, 1])
    rows = {row[0]: row for row in built["table1"][2]}
    assert rows["vanilla"][2:4] == ["7.0", "20.0"]  # evaluated once: no spread
    assert rows["ar2"][2:4] == ["8.5 ± 0.7", "11.8 ± 1.1"]
    assert len(built["table1_seeds"][2]) == 5 + 2 * 2 * 5  # every seed's cell of 5 columns; vanilla once
    (fog,) = paired
    assert fog["corruption"] == "fog" and fog["mean"] == pytest.approx(0.75) and fog["n"] == 2
    assert fog["verdict"] == "tie"


@pytest.mark.slow
def test_two_seed_benchmark_trains_each_run_per_seed_and_reports_the_paired_interval(tmp_path):
    model = str(tmp_path / "tiny.keras")
    tiny_classifier(num_classes=6, input_shape=(32, 32, 3)).save(model)
    out = str(tmp_path / "out")
    argv = ["--dataset", "demo", "--model", model, "--train-size", "64", "--test-size", "32", "--batch-size", "32",
            "--preset", "tiny", "--methods", "vanilla,finetune_epochs,ar2", "--corruptions", "contrast",
            "--eval-corruptions", "contrast", "--severities", "1", "--seeds", "0,1", "--verbose", "0", "--out", out]
    assert run_main(benchmark.main, argv) == 0
    assert sorted(os.listdir(os.path.join(out, "runs"))) == [
        "ar2_contrast", "ar2_contrast_seed1", "finetune_epochs_contrast", "finetune_epochs_contrast_seed1"]
    with open(os.path.join(out, "benchmark.json")) as file:
        record = json.load(file)
    assert record["seeds"]["seeds"] == [0, 1]
    assert {run["seed"] for run in record["runs"]} == {0, 1}
    (pair,) = record["paired"]
    assert pair["corruption"] == "contrast" and pair["n"] == 2 and pair["low"] <= pair["mean"] <= pair["high"]
    with open(os.path.join(out, "report.md")) as file:
        assert "contrast: AR2 − fine-tuning (same epochs)" in file.read()
    # bench/budget_table.py rebuilds the same interval from the evaluation's cells
    (row,) = budget_table.rows_of(out)
    assert row[:3] == ["contrast", "2 batches", 2]
    assert row[5] == f"{pair['mean']:+.1f} [{pair['low']:+.1f}, {pair['high']:+.1f}]" and row[6] == pair["verdict"]
