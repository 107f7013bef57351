"""The robustness report from Python (`ar2_tf.robustness_report`, `RobustnessResult.write_report`): one page whose
images are PNGs of their fixed sizes, whose links resolve in its folder and whose numbers are the results'."""

import os

import numpy as np
import pytest

import ar2_tf
from ar2_tf.errors import UserError
from ar2_tf.evaluation import cam_panel, figures, report_page
from ar2_tf.evaluation.robustness import evaluate_robustness
from tests.helpers import (
    colour_class_classifier,
    colour_class_images,
    markdown_rows,
    page_links,
    pixels,
    png_size,
    tiny_classifier,
)

CORRUPTIONS, SEVERITIES = ("contrast", "gaussian_noise"), (1, 3)
CLASSES = ("red", "green", "blue", "grey")


@pytest.fixture(scope="module")
def data():
    """96 images whose brightest channel is the class (3: none)."""
    return colour_class_images(96)


@pytest.fixture(scope="module")
def evaluated(data):
    """Two classifiers and their results: one with a global-pooling + Dense head, one VGG-like (no exact CAMs)."""
    gap = colour_class_classifier(data, epochs=10, batch_size=16)
    vgg = tiny_classifier(4, (16, 16, 3), head="flatten", seed=2)
    models = {"gap": gap, "vgg": vgg}
    results = {label: evaluate_robustness(model, data, corruptions=CORRUPTIONS, severities=SEVERITIES,
                                          preprocessing="unit") for label, model in models.items()}
    return models, results


def _number(value):
    return f"{value:.{report_page.DIGITS}f}"


def check_images(folder, corruptions, cam_columns=None):
    """Every link of index.md is a file in `folder`; every PNG there is linked and of its fixed pixel size."""
    page = os.path.join(folder, report_page.PAGE)
    links = page_links(page)
    assert links and all(os.path.isfile(os.path.join(folder, link)) and os.sep not in link for link in links)
    expected = {report_page.BARS_PNG: pixels(report_page.BARS_FIGSIZE, figures.DPI),
                report_page.LINES_PNG: pixels(figures.severity_grid(len(corruptions) + 1)[2], figures.DPI)}
    if cam_columns:
        figsize = figures.panel_grid_figsize(cam_panel.CAM_TILE, cam_panel.CAM_IMAGES, cam_columns)
        expected[report_page.CAM_PNG] = pixels(figsize, figures.GRID_DPI)
    assert sorted(name for name in os.listdir(folder) if name.endswith(".png")) == sorted(expected)
    assert sorted(links) == sorted(expected)
    for name, size in expected.items():
        assert png_size(os.path.join(folder, name)) == size, name
    return page


def test_the_page_shows_every_model_beside_the_others_with_the_results_numbers(tmp_path, evaluated, data):
    models, results = evaluated
    folder = str(tmp_path / "report")
    page = ar2_tf.robustness_report(folder, results, models=models, data=data, class_names=CLASSES)
    assert page == os.path.join(folder, "index.md")
    check_images(folder, CORRUPTIONS, cam_columns=3)  # clean, corrupted, the CAM of the one model that has them
    for label, result in results.items():
        summary, = markdown_rows(page, label)[:1]
        assert summary == [_number(result.clean_error), _number(result.mce),
                           _number(result.mean_corruption_accuracy)]
        ce_row = markdown_rows(page, label)[1]  # CE table: clean, each corruption, mCE
        assert ce_row == [_number(v) for v in (result.clean_error, *[result.ce[c] for c in CORRUPTIONS], result.mce)]
        means = report_page.severity_means(result.errors, SEVERITIES)
        assert markdown_rows(page, label)[2] == [_number(v) for v in (result.clean_error, *means)]
    # each model's own error table: one row per corruption, the cells of its severities and their mean
    for corruption in CORRUPTIONS:
        rows = markdown_rows(page, corruption)
        assert [row[:len(SEVERITIES)] for row in rows] == [
            [_number(results[label].errors[corruption][str(s)]) for s in SEVERITIES] for label in results]
    text = open(page).read()
    assert "Corruptions (2): `contrast`, `gaussian_noise`." in text and "Severities (2): 1, 3." in text
    assert "96 test images" in text
    assert ("`vgg` is not in the panel: its head (pool -> flatten -> hidden -> classes) is not global average "
            "pooling followed by linear layers") in text
    assert text.count("\n# ") == 0 and text.startswith("# Robustness report: gap, vgg")


def test_the_panel_shows_the_evaluated_corruption_with_the_highest_ce(evaluated, data):
    from ar2_tf.data.pairs import pixel_split
    from ar2_tf.evaluation.corrupted_sets import GeneratedSource

    _, results = evaluated
    gap = results["gap"]
    worst = report_page.panel_corruption(gap)
    assert gap.ce[worst] == max(gap.ce.values())
    split = pixel_split(data)
    images = cam_panel.panel_images(split, GeneratedSource(split, verbose=0), worst, 3, CLASSES)
    assert (images.corruption, images.severity, images.class_names) == (worst, 3, CLASSES)
    np.testing.assert_array_equal(images.clean, data[0][:cam_panel.CAM_IMAGES])
    np.testing.assert_array_equal(images.labels, data[1][:cam_panel.CAM_IMAGES])
    # the evaluation's own corrupted images: the first of its generated set
    first, _ = GeneratedSource(split, verbose=0).arrays(worst, 3)
    np.testing.assert_array_equal(images.corrupted, first[:cam_panel.CAM_IMAGES])
    assert cam_panel.panel_severity((1, 3, 5)) == 3 and cam_panel.panel_severity((1, 2)) == 2


def test_one_result_writes_its_own_report(tmp_path, evaluated, data):
    models, results = evaluated
    folder = str(tmp_path / "one")
    page = results["gap"].write_report(folder, model=models["gap"], data=data)
    check_images(folder, CORRUPTIONS, cam_columns=3)
    assert markdown_rows(page, "model")[0][0] == _number(results["gap"].clean_error)
    # without a model: the numbers and figures, no CAM panel
    bare = str(tmp_path / "bare")
    results["vgg"].write_report(bare)
    check_images(bare, CORRUPTIONS)
    assert "Attention" not in open(os.path.join(bare, "index.md")).read()


def test_a_model_whose_head_has_no_cam_leaves_one_sentence_and_no_panel(tmp_path, evaluated, data):
    models, results = evaluated
    folder = str(tmp_path / "vgg")
    page = results["vgg"].write_report(folder, model=models["vgg"], data=data, label="vgg")
    check_images(folder, CORRUPTIONS)
    text = open(page).read()
    assert "No CAM panel: no model has exact class activation maps." in text
    assert "`vgg` is not in the panel: its head" in text


def test_a_panel_that_cannot_be_drawn_leaves_one_sentence_and_the_numbers(tmp_path, evaluated, data):
    from ar2_tf.evaluation.robustness import RobustnessResult

    models, results = evaluated
    made = results["gap"]
    by_hand = RobustnessResult(made.clean_error, made.errors, made.summary)  # no setup: no preprocessing known
    folder = str(tmp_path / "by_hand")
    page = by_hand.write_report(folder, model=models["gap"], data=data)
    check_images(folder, CORRUPTIONS)
    assert "No CAM panel: drawing it failed (" in open(page).read()
    assert markdown_rows(page, "model")[0] == [_number(made.clean_error), _number(made.mce),
                                               _number(made.mean_corruption_accuracy)]


def test_bad_folders_and_arguments_are_one_clear_line(tmp_path, evaluated):
    models, results = evaluated
    file = tmp_path / "file.txt"
    file.write_text("x")
    with pytest.raises(UserError, match="is an existing file; pass a folder path"):
        results["gap"].write_report(str(file))
    with pytest.raises(UserError, match="which is a file; pass a folder path"):
        results["gap"].write_report(str(file / "report"))
    with pytest.raises(UserError, match="needs the test images: pass `data`"):
        ar2_tf.robustness_report(str(tmp_path / "r"), results, models=models)
    with pytest.raises(UserError, match=r"`models` names \['other'\]"):
        ar2_tf.robustness_report(str(tmp_path / "r"), results, models={"other": models["gap"]}, data=(1, 2))
    with pytest.raises(UserError, match="`results` must be a RobustnessResult"):
        ar2_tf.robustness_report(str(tmp_path / "r"), {})
    assert not os.path.exists(tmp_path / "r")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_folder_that_cannot_be_written_is_one_clear_line(tmp_path, evaluated):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        with pytest.raises(UserError, match="cannot be written"):
            evaluated[1]["gap"].write_report(str(locked / "report"))
    finally:
        locked.chmod(0o700)


def test_a_model_with_the_same_errors_as_another_is_named_under_the_figure(tmp_path, evaluated):
    _, results = evaluated
    page = ar2_tf.robustness_report(str(tmp_path / "r"), {"gap": results["gap"], "vgg": results["vgg"],
                                                          "kept pretrained": results["gap"]})
    with open(page) as file:
        text = file.read()
    assert "*kept pretrained* has the same error as *gap* on every test set" in text
    assert "*vgg* has the same error" not in text
