"""The benchmark's tables for its models evaluated on a second test set, from a real tiny benchmark on the demo data."""

import json
import os
import shutil
import sys

import pytest

from ar2_tf import benchmark_view, evaluate
from ar2_tf.benchmarking import view as benchmark_views
from ar2_tf.cli import run_main

pytestmark = pytest.mark.xdist_group("tiny_benchmark")  # shares the session fixture `tiny_benchmark`


@pytest.fixture(scope="module")
def second_view(tiny_benchmark, tmp_path_factory):
    """The tiny benchmark's runs evaluated on another test subset (37 images, seed 7: an error rate of 37 images
    equals one of the benchmark's 32 only at 0 or 100 %, so the two views cannot agree by chance); the pretrained
    model and the AR2 model repaired for contrast under TENT too."""
    argv, bench = tiny_benchmark
    model, corruptions = (argv[argv.index(flag) + 1] for flag in ("--model", "--corruptions"))
    runs = [os.path.join(bench, "runs", key) for key in
            ("finetune_gaussian_noise", "finetune_contrast", "ar2_gaussian_noise", "ar2_contrast")]
    evaluation = str(tmp_path_factory.mktemp("view") / "second")
    argv = ["--baseline", model, "--tent", model, "--tent", runs[3], *[arg for run in runs for arg in ("--model", run)], "--dataset", "demo",
            "--test-size", "37", "--seed", "7", "--corruptions", corruptions, "--severities", "1,5",
            "--cache-dir", "none", "--verbose", "0", "--out", evaluation]
    assert run_main(evaluate.main, argv) == 0
    return bench, evaluation, argv


def _results(evaluation):
    with open(os.path.join(evaluation, "evaluation.json")) as file:
        return json.load(file)


def test_tables_hold_the_second_evaluations_numbers_in_the_benchmarks_layout(second_view):
    bench, evaluation, _ = second_view
    view = benchmark_views.write_view(bench, evaluation)
    results = _results(evaluation)
    models = results["models"]
    rows = {row[0]: row for row in view["tables"]["table1_repaired"]["rows"]}
    assert set(rows) == {"vanilla", "fine-tune (same phases)", "AR2", "TENT (test-time)", "AR2 + TENT"}
    assert rows["TENT (test-time)"][2] == models["tiny + TENT"]["clean"]
    # A run evaluated under TENT fills its entry's TENT row, in its own column only.
    contrast = models["ar2:contrast + TENT"]
    assert rows["AR2 + TENT"][2:] == [contrast["clean"], None, contrast["summary"]["unnormalized"]["ce"]["contrast"],
                                      None]

    def ce(label, corruption):
        return models[label]["summary"]["unnormalized"]["ce"][corruption]

    assert rows["vanilla"][2:] == pytest.approx([
        models[results["baseline"]]["clean"], ce(results["baseline"], "gaussian_noise"),
        ce(results["baseline"], "contrast"),
        (ce(results["baseline"], "gaussian_noise") + ce(results["baseline"], "contrast")) / 2])
    # Each AR2 column is the CE of the model repaired for that corruption; clean is their mean.
    assert rows["AR2"][3:5] == pytest.approx([ce("ar2:gaussian_noise", "gaussian_noise"), ce("ar2:contrast", "contrast")])
    assert rows["AR2"][2] == pytest.approx((models["ar2:gaussian_noise"]["clean"] + models["ar2:contrast"]["clean"]) / 2)
    # The second view is its own measurement: not the benchmark's first-view numbers.
    with open(os.path.join(bench, "benchmark.json")) as file:
        first = {row[0]: row for row in json.load(file)["tables"]["table1_repaired"]["rows"]}
    assert first["vanilla"][2:] != rows["vanilla"][2:]
    out = os.path.join(evaluation, "benchmark_tables")
    for name in ("table1", "table1_repaired", "table2", "view"):
        assert os.path.exists(os.path.join(out, f"{name}.json"))
    assert os.path.exists(os.path.join(out, "transfer_ar2", "transfer.png"))
    assert view["missing_runs"] == []


def test_runs_left_out_of_the_evaluation_are_listed(second_view, tmp_path):
    bench, evaluation, _ = second_view
    results = _results(evaluation)
    del results["models"]["ar2:contrast"]
    partial = tmp_path / "partial"
    partial.mkdir()
    (partial / "evaluation.json").write_text(json.dumps(results))
    view = benchmark_views.write_view(bench, str(partial))
    assert view["missing_runs"] == ["ar2_contrast"]
    rows = {row[0]: row for row in view["tables"]["table1_repaired"]["rows"]}
    assert rows["AR2"][4] is None and rows["AR2"][3] is not None


@pytest.mark.parametrize("change, message", [
    ("incomplete", "is not complete; re-run its python -m ar2_tf.evaluate command"),
    ("no_baseline", "evaluate again with --baseline"),
    ("other_models", "holds none of the kept models in"),
    ("not_an_evaluation", "not an evaluation folder"),
])
def test_bad_input_gets_one_clear_message(second_view, tmp_path, capsys, change, message):
    bench, evaluation, _ = second_view
    results = _results(evaluation)
    if change == "incomplete":
        results["complete"] = False
    elif change == "no_baseline":
        results["baseline"] = None
    elif change == "other_models":
        for entry in results["models"].values():
            entry["fingerprint"]["path"] = "/elsewhere/" + os.path.basename(entry["fingerprint"]["path"])
    if change != "not_an_evaluation":
        (tmp_path / "evaluation.json").write_text(json.dumps(results))
    code = run_main(benchmark_view.main, ["--benchmark", bench, "--evaluation", str(tmp_path)])
    error = capsys.readouterr().err
    assert code == 2 and message in error and "Traceback" not in error


def test_a_model_changed_since_its_evaluation_is_refused(second_view, tmp_path, capsys):
    bench, evaluation, _ = second_view
    copy = tmp_path / "bench"
    shutil.copytree(bench, copy)
    results = _results(evaluation)
    for entry in results["models"].values():
        entry["fingerprint"]["path"] = entry["fingerprint"]["path"].replace(bench, str(copy))
    (tmp_path / "evaluation.json").write_text(json.dumps(results))
    assert run_main(benchmark_view.main, ["--benchmark", str(copy), "--evaluation", str(tmp_path)]) == 0
    os.utime(copy / "runs" / "ar2_contrast" / "model.keras", ns=(1, 1))
    assert run_main(benchmark_view.main, ["--benchmark", str(copy), "--evaluation", str(tmp_path)]) == 2
    assert "ar2_contrast/model.keras changed after it was evaluated" in capsys.readouterr().err


def test_last_phase_weights_fill_the_tables_with_what_training_reached(tiny_benchmark, tmp_path, capsys):
    """scripts/last_phase.py writes each run's last epoch as last_phase.keras; an evaluation of those files, one
    run folder beside them for the run's data, fills the tables with them (`--weights last-phase`)."""
    argv, bench = tiny_benchmark
    copy = str(tmp_path / "bench")
    shutil.copytree(bench, copy)
    model = argv[argv.index("--model") + 1]
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts"))
    import last_phase  # scripts/last_phase.py

    last_phase.main(["--benchmark", copy, "--model", model])
    runs = os.path.join(copy, "runs")
    files = {key: os.path.join(runs, key, "last_phase.keras") for key in ("ar2_gaussian_noise", "ar2_contrast")}
    evaluation = str(tmp_path / "last")
    assert run_main(evaluate.main, ["--baseline", model, "--model", os.path.join(runs, "finetune_contrast"),
                                    *[arg for path in files.values() for arg in ("--model", path)],
                                    "--corruptions", "gaussian_noise,contrast", "--severities", "1,5",
                                    "--verbose", "0", "--out", evaluation]) == 0
    models = {entry["fingerprint"]["path"]: entry for entry in _results(evaluation)["models"].values()}
    assert run_main(benchmark_view.main, ["--benchmark", copy, "--evaluation", evaluation,
                                          "--weights", "last-phase"]) == 0
    with open(os.path.join(evaluation, "benchmark_tables", "view.json")) as file:
        view = json.load(file)
    assert view["weights"] == "last-phase"
    rows = {row[0]: row for row in view["tables"]["table1_repaired"]["rows"]}
    reached = [models[files[key]]["summary"]["unnormalized"]["ce"][corruption]
               for key, corruption in (("ar2_gaussian_noise", "gaussian_noise"), ("ar2_contrast", "contrast"))]
    assert rows["AR2"][3:5] == pytest.approx(reached)
    assert "finetune_contrast" in view["missing_runs"]  # its kept model, not its last phase, was evaluated


def test_last_phase_tables_of_an_evaluation_of_kept_models_is_one_clear_line(second_view, capsys):
    bench, evaluation, _ = second_view
    assert run_main(benchmark_view.main, ["--benchmark", bench, "--evaluation", evaluation,
                                          "--weights", "last-phase"]) == 2
    error = capsys.readouterr().err
    assert "holds none of the last-phase models" in error and "scripts/last_phase.py" in error
