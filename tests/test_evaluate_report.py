"""`python -m ar2_tf.evaluate --report DIR`: the report of an evaluation, every model beside the others, its
numbers those of evaluation.json; a bad folder is refused before evaluating, and a report that fails keeps the
numbers."""

import json
import os

import pytest

from ar2_tf.cli import run_main
from ar2_tf.evaluate import main
from ar2_tf.evaluation import cam_panel, figures, report_page
from tests.helpers import (
    markdown_rows,
    page_links,
    pixels,
    png_size,
    tiny_classifier,
    trained_tiny_classifier,
    write_run,
)

FLAGS = ["--dataset", "demo", "--corruptions", "fog,contrast", "--severities", "1,5", "--test-size", "40",
         "--verbose", "0"]


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    """A classifier trained for seconds (its errors move with the corruptions)."""
    path = str(tmp_path_factory.mktemp("models") / "tiny.keras")
    trained_tiny_classifier(0).save(path)
    return path


@pytest.fixture(scope="module")
def batchnorm_model(tmp_path_factory):
    """A classifier with BatchNorm layers, which TENT adapts."""
    path = str(tmp_path_factory.mktemp("models") / "bn.keras")
    tiny_classifier(num_classes=6, input_shape=(32, 32, 3), seed=2).save(path)
    return path


def _cell(value):
    return "–" if value is None else f"{value:.2f}"


def test_the_report_shows_the_model_beside_a_repaired_run_and_tent_with_evaluation_json_numbers(
        tmp_path, model, batchnorm_model):
    run = write_run(tmp_path / "run", trained_tiny_classifier(1), dataset="demo", corruption="fog")
    out, report = str(tmp_path / "eval"), str(tmp_path / "report")
    assert run_main(main, ["--model", model, "--model", run, "--tent", batchnorm_model, "--baseline", model, *FLAGS,
                           "--out", out, "--report", report]) == 0
    with open(os.path.join(out, "evaluation.json")) as file:
        results = json.load(file)
    page = os.path.join(report, "index.md")
    text = open(page).read()
    # the baseline and the model are one file: shown once, under the baseline's label
    assert text.startswith("# Robustness report: tiny (baseline), ar2:fog, bn + TENT")
    assert "`tiny (baseline)` and `tiny` are one measurement of one model file, shown once as `tiny (baseline)`." in text
    assert f"Made by `python -m ar2_tf.evaluate --model {model} --model {run} --tent {batchnorm_model}" in text
    assert "- 40 test images of `demo`" in text and "Severities (2): 1, 5." in text
    for label in ("tiny (baseline)", "ar2:fog", "bn + TENT"):
        summary = results["models"][label]["summary"]
        first, ce, _ = markdown_rows(page, label)
        assert first == [_cell(value) for value in (
            summary["clean_error"], summary["unnormalized"]["mce"],
            100 - sum(e for cells in results["models"][label]["errors"].values() for e in cells.values()) / 4,
            summary["baseline"]["mce"], summary["baseline"]["relative_mce"])]
        assert ce[1:3] == [_cell(summary["unnormalized"]["ce"][c]) for c in ("fog", "contrast")]
    assert "| model | clean error | mCE | mean corruption accuracy | mCE vs tiny (baseline) |" in text
    assert "`bn + TENT` is not in the panel: it adapts its BatchNorm layers on every test batch (TENT)" in text
    assert sorted(page_links(page)) == sorted(name for name in os.listdir(report) if name.endswith(".png"))
    assert png_size(os.path.join(report, report_page.BARS_PNG)) == pixels(report_page.BARS_FIGSIZE, figures.DPI)
    assert png_size(os.path.join(report, report_page.LINES_PNG)) == pixels(figures.severity_grid(3)[2], figures.DPI)
    panel = figures.panel_grid_figsize(cam_panel.CAM_TILE, cam_panel.CAM_IMAGES, 4)  # clean, corrupted, 2 CAMs
    assert png_size(os.path.join(report, report_page.CAM_PNG)) == pixels(panel, figures.GRID_DPI)


def test_a_report_folder_that_is_a_file_is_refused_before_evaluating(tmp_path, model, capsys):
    taken = tmp_path / "taken"
    taken.write_text("x")
    out = tmp_path / "eval"
    assert run_main(main, ["--model", model, *FLAGS, "--out", str(out), "--report", str(taken)]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "is an existing file; pass a folder path" in error
    assert not out.exists()


def test_a_report_that_fails_keeps_the_evaluations_numbers(tmp_path, model, capsys, monkeypatch):
    from ar2_tf.evaluation import report

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(report, "evaluation_report", broken)
    out = str(tmp_path / "eval")
    assert run_main(main, ["--model", model, *FLAGS, "--out", out, "--report", str(tmp_path / "report")]) == 2
    captured = capsys.readouterr()
    assert "| tiny |" in captured.out  # the table is printed first
    assert captured.err.count("\n") == 1
    assert (f"the report in {tmp_path / 'report'} could not be written (OSError: disk full); the evaluation's "
            f"numbers are in {out}/evaluation.json and printed above") in captured.err
    with open(os.path.join(out, "evaluation.json")) as file:
        assert json.load(file)["complete"]
