"""The benchmark: its run plan and budgets, its tables, and one tiny run end to end on the demo data."""

import json
import os

import pytest

from ar2_tf import benchmark as benchmark_command
from ar2_tf.benchmarking import report as benchmark_report
from ar2_tf.benchmarking import run as benchmark
from ar2_tf.cli import run_main
from ar2_tf.runs.config import RepairConfig, TrainConfig
from ar2_tf.runs.methods import BENCHMARK_ENTRIES, schedule_of

pytestmark = pytest.mark.xdist_group("tiny_benchmark")  # shares the session fixture `tiny_benchmark`


def test_plan_gives_every_method_its_budget_from_the_same_base():
    base = TrainConfig(dataset="cifar10", model="m.h5", repair=RepairConfig(iterations=4, refine_steps=1,
                                                                             finetune_steps=2))
    runs = benchmark.plan_runs(base, benchmark.METHODS, ("fog", "contrast"))
    assert [run["key"] for run in runs] == [
        "finetune_fog", "finetune_contrast", "finetune_epochs_fog", "finetune_epochs_contrast", "augmix_all",
        "ar2_fog", "ar2_contrast", "unified_all", "bn_adapt_fog", "bn_adapt_contrast"]
    configs = {run["key"]: run["config"] for run in runs}
    assert (configs["unified_all"].method, configs["unified_all"].corruption) == ("ar2", "all")
    assert (configs["augmix_all"].method, configs["augmix_all"].corruption) == ("augmix", "all")
    assert configs["finetune_epochs_fog"].method == "finetune" and configs["bn_adapt_fog"].method == "bn-adapt"
    # Fine-tuning alone runs T·M epochs (same phases) or T·(N+M) (same epochs); the others T·(N+M).
    assert schedule_of(configs["finetune_fog"]).total_steps == 8
    assert schedule_of(configs["finetune_epochs_fog"]).total_steps == 12
    assert {m: label["budget"] for m, label in benchmark.method_labels(base.repair).items()} == {
        "vanilla": "0 epochs", "finetune": "8 epochs", "finetune_epochs": "12 epochs", "augmix": "12 epochs",
        "ar2": "12 epochs", "unified": "12 epochs", "bn_adapt": "1 epoch", "tent": "1 step per test batch",
        # the trained per-corruption models under TENT: BN adaptation's would be TENT on the pretrained model
        "finetune+tent": "8 epochs + 1 step per test batch",
        "finetune_epochs+tent": "12 epochs + 1 step per test batch", "ar2+tent": "12 epochs + 1 step per test batch"}
    assert benchmark.method_labels(base.repair)["finetune_epochs+tent"]["label"] == "fine-tune (same epochs) + TENT"
    assert all(run["config"].model == "m.h5" and run["config"].dataset == "cifar10" for run in runs)


def entry(clean, ce):
    return {"clean": clean, "summary": {"unnormalized": {"ce": ce}}}


def test_table1_takes_each_per_corruption_models_own_corruption_and_table2_their_clean_errors():
    runs = [{"key": "vanilla", "method": "vanilla", "corruption": "all"},
            {"key": "ar2_fog", "method": "ar2", "corruption": "fog"},
            {"key": "ar2_contrast", "method": "ar2", "corruption": "contrast"},
            {"key": "unified_all", "method": "unified", "corruption": "all"}]
    entries = {"vanilla": entry(7.0, {"fog": 20.0, "contrast": 30.0, "snow": 25.0}),
               "ar2_fog": entry(9.0, {"fog": 10.0, "contrast": 40.0, "snow": 26.0}),
               "ar2_contrast": entry(11.0, {"fog": 21.0, "contrast": 12.0, "snow": 27.0}),
               "unified_all": entry(8.0, {"fog": 15.0, "contrast": 16.0, "snow": 17.0})}
    labels = benchmark.method_labels(RepairConfig(iterations=2))
    title, header, rows = benchmark_report.table1(runs, entries, ("fog", "contrast"), ("fog", "contrast", "snow"),
                                                  labels)
    assert header[-2:] == ["mCE (2 repaired-for)", "mCE (all 3)"]
    by_label = {row[0]: row for row in rows}
    assert by_label["AR2"][2:] == [10.0, 10.0, 12.0, None, 11.0, None]  # clean = mean of 9 and 11
    assert by_label["AR2 unified (all 15)"][2:] == [8.0, 15.0, 16.0, 17.0, 15.5, 16.0]
    assert by_label["vanilla"][1] == "0 epochs"
    _, header2, rows2 = benchmark_report.table2(runs, entries, ("fog", "contrast"), labels, vanilla_clean=7.0)
    assert header2 == ["method", "fog", "contrast", "mean"] and rows2 == [["AR2", 9.0, 11.0, 10.0]]


def test_report_describes_the_budget_of_each_method_run_and_only_those():
    record = {"methods": ["vanilla", "finetune_epochs", "ar2"],
              "config": {"repair": {"step_unit": "batch", "iterations": 160, "refine_steps": 1, "finetune_steps": 1}}}
    assert benchmark_report.budget_lines(record) == [
        "- fine-tune (same epochs): 320 batches, fine-tuning on clean + corrupted images for T·(N+M) steps, AR2's "
        "whole budget (T=160, N=1, M=1).",
        "- AR2: 320 batches, T iterations of N refinement then M fine-tuning steps (T=160, N=1, M=1)."]
    record = {"methods": ["bn_adapt", "tent"],
              "config": {"repair": {"step_unit": "epoch", "iterations": 4, "refine_steps": 1, "finetune_steps": 1}}}
    assert benchmark_report.budget_lines(record) == [  # one pass, and no training: no T, N, M
        "- BN adaptation: 1 epoch, BatchNorm statistics re-estimated on the corrupted training images, one pass, no "
        "gradient step (Schneider et al., NeurIPS 2020).",
        f"- TENT (test-time): {BENCHMARK_ENTRIES['tent'].summary}."]
    record = {"methods": ["finetune", "unified"],
              "config": {"repair": {"step_unit": "epoch", "iterations": 1, "refine_steps": 0, "finetune_steps": 1}}}
    lines = benchmark_report.budget_lines(record)
    assert lines[0].startswith("- fine-tune (same phases): 1 epoch, fine-tuning on clean + corrupted images for T·M")
    assert lines[1].startswith("- AR2 unified (all 15): 1 epoch, AR2 with each batch drawing one of the 15")


def test_benchmark_runs_end_to_end_and_writes_every_table(tiny_benchmark):
    _, out = tiny_benchmark
    for name in ("table1", "table1_repaired", "table2"):
        for ext in ("md", "csv", "json"):
            assert os.path.getsize(os.path.join(out, f"{name}.{ext}")) > 50
    assert os.path.exists(os.path.join(out, "transfer_ar2", "transfer.png"))
    with open(os.path.join(out, "benchmark.json")) as file:
        record = json.load(file)
    assert record["command"].startswith("python -m ar2_tf.benchmark --dataset demo")
    assert record["environment"]["tensorflow"] and record["seeds"]["seed"] == 0
    assert [run["key"] for run in record["runs"]] == ["finetune_gaussian_noise", "finetune_contrast",
                                                      "ar2_gaussian_noise", "ar2_contrast"]
    rows = {row[0]: row for row in record["tables"]["table1"]["rows"]}
    assert set(rows) == {"vanilla", "fine-tune (same phases)", "AR2", "TENT (test-time)",
                         "fine-tune (same phases) + TENT", "AR2 + TENT"}
    evaluation = json.load(open(os.path.join(out, "evaluation", "evaluation.json")))
    tent = next(entry for entry in evaluation["models"].values() if entry["adaptation"] == "tent")
    assert rows["TENT (test-time)"][2] == tent["clean"] and rows["TENT (test-time)"][1] == "1 step per test batch"
    assert all(0 <= value <= 100 for row in rows.values() for value in row[2:5])
    report = open(os.path.join(out, "report.md")).read()
    assert "## Wall time" in report and "- AR2: 2 batches, T iterations" in report
    assert "- fine-tune (same phases): 1 batch, fine-tuning" in report
    assert "- TENT (test-time): the pretrained model adapted on each test set" in report
    assert "AugMix:" not in report and "unified" not in report


def test_benchmark_reports_each_models_offtarget_change_from_its_evaluation(tiny_benchmark):
    _, out = tiny_benchmark
    with open(os.path.join(out, "benchmark.json")) as file:
        record = json.load(file)
    for ext in ("md", "csv", "json"):
        assert os.path.getsize(os.path.join(out, f"offtarget.{ext}")) > 50
    with open(os.path.join(out, "evaluation", "evaluation.json")) as file:
        evaluation = json.load(file)
    by_source = {entry["source"]: entry["summary"]["unnormalized"]["ce"] for entry in evaluation["models"].values()
                 if entry["adaptation"] is None}
    vanilla = evaluation["models"][evaluation["baseline"]]["summary"]["unnormalized"]["ce"]
    runs = {run["key"]: os.path.join(run["dir"], "model.keras") for run in record["runs"]}
    # two evaluated corruptions: the change off gaussian_noise is the one on contrast, and the reverse
    expected = {"gaussian_noise": by_source[runs["ar2_gaussian_noise"]]["contrast"] - vanilla["contrast"],
                "contrast": by_source[runs["ar2_contrast"]]["gaussian_noise"] - vanilla["gaussian_noise"]}
    ar2 = {row["corruption"]: row["values"] for row in record["offtarget"] if row["method"] == "ar2"}
    assert ar2 == {c: [pytest.approx(value)] for c, value in expected.items()}
    assert {row["method"] for row in record["offtarget"]} == {"finetune", "ar2", "finetune+tent", "ar2+tent"}
    rows = {row[0]: row for row in record["tables"]["offtarget"]["rows"]}
    table1 = {row[0]: row for row in record["tables"]["table1_repaired"]["rows"]}
    assert rows["AR2"][2:4] == [table1["AR2"][2], table1["AR2"][-1]]  # beside Table 1's clean error and mCE
    assert rows["AR2"][-1] == pytest.approx(sum(expected.values()) / 2)
    assert record["paired_columns"] == []  # one seed
    with open(os.path.join(out, "report.md")) as file:
        assert "**Collateral damage: mean CE change" in file.read()


def test_with_tent_every_repaired_model_is_also_evaluated_under_tent(tiny_benchmark):
    _, out = tiny_benchmark
    with open(os.path.join(out, "benchmark.json")) as file:
        record = json.load(file)
    with open(os.path.join(out, "evaluation", "evaluation.json")) as file:
        evaluation = json.load(file)
    adapted = {entry["source"]: entry for entry in evaluation["models"].values() if entry["adaptation"] == "tent"}
    runs = {run["key"]: os.path.join(run["dir"], "model.keras") for run in record["runs"]}
    pretrained = evaluation["models"][evaluation["baseline"]]["source"]
    assert set(adapted) == {*runs.values(), pretrained}

    def ce(key, corruption):
        return adapted[runs[key]]["summary"]["unnormalized"]["ce"][corruption]

    rows = {row[0]: row for row in record["tables"]["table1"]["rows"]}
    ar2 = rows["AR2 + TENT"]  # method, budget, clean, gaussian_noise, contrast, mCE (2), mCE (all 2)
    assert ar2[1] == "2 batches + 1 step per test batch"
    assert ar2[3:5] == [ce("ar2_gaussian_noise", "gaussian_noise"), ce("ar2_contrast", "contrast")]
    assert ar2[2] == pytest.approx((adapted[runs["ar2_gaussian_noise"]]["clean"]
                                    + adapted[runs["ar2_contrast"]]["clean"]) / 2)
    assert rows["fine-tune (same phases) + TENT"][4] == ce("finetune_contrast", "contrast")
    table2 = {row[0]: row for row in record["tables"]["table2"]["rows"]}
    assert table2["AR2 + TENT"][1] == adapted[runs["ar2_gaussian_noise"]]["clean"]
    assert sorted(record["transfer"]) == ["ar2", "finetune"]  # the models' own transfer matrices only
    assert record["paired"] == [] and record["paired_tent"] == []  # one seed: no paired interval
    report = open(os.path.join(out, "report.md")).read()
    assert "| AR2 + TENT | 2 batches + 1 step per test batch |" in report
    assert "- fine-tune (same phases) + TENT, AR2 + TENT: each of their models adapted" in report


def test_second_call_reuses_finished_runs(tiny_benchmark, capsys):
    argv, out = tiny_benchmark
    models = [os.path.join(out, "runs", key, "model.keras") for key in ("finetune_contrast", "ar2_gaussian_noise")]
    stamps = [os.stat(path).st_mtime_ns for path in models]
    capsys.readouterr()
    assert run_main(benchmark_command.main, argv) == 0
    assert capsys.readouterr().out.count("(finished, reused)") == 4
    assert [os.stat(path).st_mtime_ns for path in models] == stamps


def test_the_shared_config_is_checked_once_and_each_run_once(tiny_benchmark, capsys, monkeypatch):
    from ar2_tf.runs import config, plan

    argv, out = tiny_benchmark
    checked = []

    def counted(check_run):
        return lambda run_config: checked.append((run_config.method, run_config.corruption)) or check_run(run_config)

    monkeypatch.setattr(config, "check_run", counted(config.check_run))
    monkeypatch.setattr(plan, "check_run", counted(plan.check_run))
    assert run_main(benchmark_command.main, argv) == 0
    with open(os.path.join(out, "benchmark.json")) as file:
        runs = [(run["config"]["method"], run["corruption"]) for run in json.load(file)["runs"]]
    assert len(runs) == 4 and checked == [(TrainConfig.method, TrainConfig.corruption)] + runs  # the base first


@pytest.mark.parametrize("flags, message", [
    (["--method", "ar2"], "--method is a python -m ar2_tf.train flag"),
    (["--methods", "vanilla,mixup"], "unknown method(s) mixup"),
    (["--corruptions", "rain"], "unknown corruption 'rain'"),
])
def test_bad_input_gets_one_clear_message(tmp_path, capsys, flags, message):
    code = run_main(benchmark_command.main, ["--dataset", "demo", "--model", "resnet8", "--out", str(tmp_path)] + flags)
    error = capsys.readouterr().err
    assert code == 2 and message in error and "Traceback" not in error
