"""Several seeds: mean ± std cells, the seed-paired AR2 − fine-tuning interval, and a tiny two-seed benchmark."""

import json
import math
import os
import sys

import pytest

from ar2_tf import benchmark
from ar2_tf.benchmarking import report, run, seed_statistics
from ar2_tf.cli import run_main
from ar2_tf.runs.config import RepairConfig
from ar2_tf.runs.methods import budget
from tests.helpers import tiny_classifier

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts"))
import budget_table  # noqa: E402  (scripts/budget_table.py)


def test_mean_std_and_the_student_t_interval_by_hand():
    assert seed_statistics.mean_std([1.0, 2.0, None, 3.0]) == (2.0, 1.0, 3)
    assert seed_statistics.mean_std([4.0]) == (4.0, None, 1)
    # d = 1, 2, 3: mean 2, sd 1, t(0.975, 2) = 4.302653 -> 2 ± 4.302653 / sqrt(3)
    row = seed_statistics.paired_interval([1.0, 2.0, 3.0])
    half = 4.302652729911275 / math.sqrt(3)
    assert row["low"] == pytest.approx(2 - half) and row["high"] == pytest.approx(2 + half)
    assert row["verdict"] == "tie" and row["n"] == 3
    assert seed_statistics.paired_interval([-3.0, -3.2, -2.9])["verdict"] == "AR2 lower"
    assert seed_statistics.paired_interval([1.0, 1.1, 1.3])["verdict"] == "fine-tuning lower"
    assert seed_statistics.paired_interval([1.0])["low"] is None
    assert seed_statistics.paired_interval([1.0, 1.1, 1.3], names=("AR2 + TENT", "TENT"))["verdict"] == "TENT lower"
    assert seed_statistics.format_cell(16.54, 0.44, 3) == "16.5 ± 0.4" and seed_statistics.format_cell(7.4, None, 1) == "7.4"


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
    built, comparisons = report.seed_tables(runs, entries, ["fog"], ["fog", "contrast"], labels, [0, 1])
    rows = {row[0]: row for row in built["table1"][2]}
    assert rows["vanilla"][2:4] == ["7.0", "20.0"]  # evaluated once: no spread
    assert rows["ar2"][2:4] == ["8.5 ± 0.7", "11.8 ± 1.1"]
    assert len(built["table1_seeds"][2]) == 5 + 2 * 2 * 5  # every seed's cell of 5 columns; vanilla once
    (fog,) = comparisons["paired"]
    assert fog["corruption"] == "fog" and fog["mean"] == pytest.approx(0.75) and fog["n"] == 2
    assert fog["verdict"] == "tie"
    assert comparisons["paired_tent"] == []  # no model under TENT


def test_repaired_models_under_tent_get_rows_and_seed_paired_comparisons(tmp_path):
    labels = run.method_labels(RepairConfig(iterations=2))
    runs = [{"key": key, "method": key, "corruption": "all", "seed": s} for s in (0, 1, 2)
            for key in ("vanilla", "tent")]
    entries = {"vanilla": _entry(7.0, {"fog": 30.0, "snow": 25.0}), "tent": _entry(9.0, {"fog": 18.0, "snow": 20.0})}
    fog = {"ar2": (20.0, 21.0, 22.0), "ar2+tent": (15.0, 16.2, 16.9), "finetune_epochs": (21.0, 22.0, 23.1),
           "finetune_epochs+tent": (14.0, 15.1, 15.9)}
    for method, values in fog.items():
        for seed, value in enumerate(values):
            key = f"{method}_fog_seed{seed}"
            runs.append({"key": key, "method": method, "corruption": "fog", "seed": seed})
            entries[key] = _entry(8.0, {"fog": value, "snow": 24.0})
    built, comparisons = report.write_tables(str(tmp_path), runs, entries, ["fog"], ["fog", "snow"], labels,
                                             "vanilla", (0, 1, 2))
    rows = {row[0]: row for row in built["table1"][2]}
    assert list(rows) == ["vanilla", "fine-tune (same epochs)", "AR2", "TENT (test-time)",
                          "fine-tune (same epochs) + TENT", "AR2 + TENT"]
    assert rows["AR2 + TENT"][1:4] == ["4 epochs + 1 step per test batch", "8.0 ± 0.0",
                                       seed_statistics.format_cell(*seed_statistics.mean_std(fog["ar2+tent"]))]
    assert rows["TENT (test-time)"][3] == "18.0"
    assert built["table1_repaired"][2][-1][:2] == ["AR2 + TENT", "4 epochs + 1 step per test batch"]
    # Seed by seed, AR2 + TENT − AR2: −5.0, −4.8, −5.1; − TENT (18, evaluated once): −3.0, −1.8, −1.1;
    # − fine-tune (same epochs) + TENT: 1.0, 1.1, 1.0.
    by_title = {row["comparison"]: row for row in comparisons["paired_tent"]}
    assert list(by_title) == ["AR2 + TENT − AR2", "AR2 + TENT − TENT (pretrained)",
                              "AR2 + TENT − fine-tune (same epochs) + TENT"]
    assert by_title["AR2 + TENT − AR2"]["mean"] == pytest.approx(-14.9 / 3)
    assert by_title["AR2 + TENT − AR2"]["verdict"] == "AR2 + TENT lower"
    assert by_title["AR2 + TENT − TENT (pretrained)"]["mean"] == pytest.approx(-5.9 / 3)
    assert by_title["AR2 + TENT − TENT (pretrained)"]["verdict"] == "tie"
    assert by_title["AR2 + TENT − fine-tune (same epochs) + TENT"]["verdict"] == "fine-tune + TENT lower"
    assert all(row["corruption"] == "fog" and row["n"] == 3 for row in by_title.values())
    # AR2 − fine-tuning keeps its own table and format; the TENT comparisons add a "comparison" column beside it
    (paired,) = comparisons["paired"]
    assert paired["verdict"] == "AR2 lower" and "comparison" not in paired
    with open(tmp_path / "paired.csv") as file:
        assert file.readline() == "corruption,mean,low,high,n,verdict\n"
    with open(tmp_path / "paired_tent.csv") as file:
        assert file.readline() == "comparison,corruption,mean,low,high,n,verdict\n"
        assert file.readline().startswith("AR2 + TENT − AR2,fog,-4.96")
    sentences = report.paired_sentences(comparisons["paired_tent"])
    assert sentences[1].startswith("- fog: AR2 + TENT − TENT (pretrained) -1.97 points, 95 % t-interval over 3 seed "
                                   "pairs [")
    assert sentences[1].endswith(": tie.")


@pytest.mark.slow
def test_two_seed_benchmark_trains_each_run_per_seed_and_reports_the_paired_intervals(tmp_path):
    model = str(tmp_path / "tiny.keras")
    tiny_classifier(num_classes=6, input_shape=(32, 32, 3)).save(model)
    out = str(tmp_path / "out")
    argv = ["--dataset", "demo", "--model", model, "--train-size", "64", "--test-size", "32", "--batch-size", "32",
            "--preset", "tiny", "--methods", "vanilla,finetune_epochs,ar2,tent", "--corruptions", "contrast",
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
    # with tent, the repaired models under TENT are paired with AR2, TENT and fine-tuning + TENT too
    assert [(row["comparison"], row["n"]) for row in record["paired_tent"]] == [
        ("AR2 + TENT − AR2", 2), ("AR2 + TENT − TENT (pretrained)", 2),
        ("AR2 + TENT − fine-tune (same epochs) + TENT", 2)]
    rows = {row[0]: row for row in record["tables"]["table1"]["rows"]}
    assert " ± " in rows["AR2 + TENT"][3] and " ± " not in rows["TENT (test-time)"][3]
    with open(os.path.join(out, "paired_tent.json")) as file:
        assert len(json.load(file)["rows"]) == 3
    with open(os.path.join(out, "report.md")) as file:
        report_text = file.read()
    assert "contrast: AR2 − fine-tuning (same epochs)" in report_text
    assert "- contrast: AR2 + TENT − fine-tune (same epochs) + TENT" in report_text
    # one evaluated corruption: nothing off the target, so no off-target change, but the clean errors are paired
    assert all(row["values"] == [None, None] for row in record["offtarget"])
    assert [row["column"] for row in record["paired_columns"]] == ["target CE", "clean error"]
    assert record["paired_columns"][0] == {"column": "target CE", **pair}
    assert "- contrast: AR2 − fine-tuning (same epochs), clean error " in report_text
    assert "(same epochs), off-target CE change" not in report_text
    assert report_text.count("- contrast: AR2 − fine-tuning") == 2  # target CE and clean error, one sentence each
    # scripts/budget_table.py rebuilds the same interval from the evaluation's cells
    (row,) = budget_table.rows_of(out)
    assert row[:3] == ["contrast", "2 batches", 2]
    assert row[5] == f"{pair['mean']:+.1f} [{pair['low']:+.1f}, {pair['high']:+.1f}]" and row[6] == pair["verdict"]
