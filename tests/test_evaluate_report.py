"""`python -m ar2_tf.evaluate --report DIR`: the report of an evaluation, every model beside the others, its
numbers those of evaluation.json; a bad folder is refused before evaluating, and a report that fails keeps the
numbers."""

import json
import os

import pytest

from ar2_tf.cli import run_main
from ar2_tf.evaluate import main
from ar2_tf.evaluation import cam_panel, figures, report_page
from tests.helpers import markdown_rows, page_links, pixels, png_size, tiny_classifier

FLAGS = ["--dataset", "demo", "--corruptions", "fog,contrast", "--severities", "1,5", "--test-size", "40",
         "--verbose", "0"]


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("models") / "bn.keras")
    tiny_classifier(num_classes=6, input_shape=(32, 32, 3), seed=2).save(path)
    return path


def test_the_report_shows_the_model_beside_its_tent_baseline_with_evaluation_json_numbers(tmp_path, model):
    out, report = str(tmp_path / "eval"), str(tmp_path / "report")
    assert run_main(main, ["--model", model, "--tent", model, *FLAGS, "--out", out, "--report", report]) == 0
    with open(os.path.join(out, "evaluation.json")) as file:
        results = json.load(file)
    page = os.path.join(report, "index.md")
    text = open(page).read()
    assert text.startswith("# Robustness report: bn, bn + TENT")
    assert f"Made by `python -m ar2_tf.evaluate --model {model} --tent {model}" in text
    assert "- 40 test images of `demo`" in text and "Severities (2): 1, 5." in text
    for label in ("bn", "bn + TENT"):
        entry = results["models"][label]
        summary, ce, _ = markdown_rows(page, label)
        assert summary[:2] == [f"{entry['clean']:.2f}", f"{entry['summary']['unnormalized']['mce']:.2f}"]
        assert ce[1:3] == [f"{entry['summary']['unnormalized']['ce'][c]:.2f}" for c in ("fog", "contrast")]
    assert "`bn + TENT` is not in the panel: it adapts its BatchNorm layers on every test batch (TENT)" in text
    assert sorted(page_links(page)) == sorted(name for name in os.listdir(report) if name.endswith(".png"))
    assert png_size(os.path.join(report, report_page.BARS_PNG)) == pixels(report_page.BARS_FIGSIZE, figures.DPI)
    assert png_size(os.path.join(report, report_page.LINES_PNG)) == pixels(figures.severity_grid(3)[2], figures.DPI)
    panel = figures.panel_grid_figsize(cam_panel.CAM_TILE, cam_panel.CAM_IMAGES, 3)  # clean, corrupted, bn's CAM
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
    assert "| bn |" in captured.out  # the table is printed first
    assert captured.err.count("\n") == 1
    assert (f"the report in {tmp_path / 'report'} could not be written (OSError: disk full); the evaluation's "
            f"numbers are in {out}/evaluation.json and printed above") in captured.err
    with open(os.path.join(out, "evaluation.json")) as file:
        assert json.load(file)["complete"]
