"""Transfer matrix (paper Figure 3): pure maths by hand, the heat map, and the CLI on tiny run folders."""

import json
import os

import pytest

from ar2_tf.evaluate import main
from ar2_tf.evaluation.transfer import plot_transfer, transfer_counts, transfer_matrix
from tests.helpers import trained_tiny_classifier

ROWS = ["gaussian_noise", "fog", "contrast"]
COLUMNS = ["gaussian_noise", "fog"]


def _matrix():
    baseline = {"gaussian_noise": 50.0, "fog": 20.0, "contrast": 30.0}
    repaired = {"gaussian_noise": {"gaussian_noise": 20.0, "fog": 25.0, "contrast": 29.0},
                "fog": {"gaussian_noise": 53.5, "fog": 12.0, "contrast": 31.0}}
    return transfer_matrix(baseline, repaired, ROWS, COLUMNS)


def test_matrix_is_the_ce_change_vs_the_baseline():
    assert _matrix() == [[-30.0, 3.5], [5.0, -8.0], [-1.0, 1.0]]


def test_missing_values_stay_missing():
    matrix = transfer_matrix({"fog": 10.0}, {"fog": {}}, ["fog", "snow"], ["fog"])
    assert matrix == [[None], [None]]


def test_counts_are_over_off_diagonal_cells():
    counts = transfer_counts(_matrix(), ROWS, COLUMNS)
    # off-diagonal: (fog, gn) +5, (contrast, gn) -1, (gn, fog) +3.5, (contrast, fog) +1
    assert counts["off_diagonal_cells"] == 4
    assert counts["worse"] == 3 and counts["improved"] == 1
    assert counts["mean_worse"] == pytest.approx((5.0 + 3.5 + 1.0) / 3)
    assert counts["max_worse"] == 5.0
    assert counts["mean_diagonal"] == pytest.approx(-19.0)


def test_heat_map_is_a_png(tmp_path):
    path = str(tmp_path / "transfer.png")
    plot_transfer(_matrix(), ROWS, COLUMNS, path)
    with open(path, "rb") as file:
        assert file.read(8) == b"\x89PNG\r\n\x1a\n"
    assert os.listdir(tmp_path) == ["transfer.png"]


def _run_folder(root, name, corruption, seed):
    folder = root / name
    folder.mkdir()
    trained_tiny_classifier(seed, epochs=2).save(str(folder / "model.keras"))
    report = {"config": {"dataset": "demo", "corruption": corruption, "method": "ar2"}, "preprocessing": "unit"}
    (folder / "report.json").write_text(json.dumps(report))
    return str(folder)


def test_transfer_cli_on_tiny_run_folders(tmp_path):
    runs = [_run_folder(tmp_path, "run_b", "brightness", 1), _run_folder(tmp_path, "run_g", "gaussian_noise", 2)]
    vanilla = str(tmp_path / "vanilla.keras")
    trained_tiny_classifier(0, epochs=2).save(vanilla)
    out = tmp_path / "transfer"
    main(["transfer", "--runs", *runs, "--baseline", vanilla, "--severities", "1-2", "--test-size", "32",
          "--out", str(out), "--cache-dir", str(tmp_path / "cache"), "--verbose", "0"])
    result = json.load(open(out / "transfer.json"))
    # rows in canonical order, columns in the order given
    assert result["rows"] == ["gaussian_noise", "brightness"] and result["columns"] == ["brightness", "gaussian_noise"]
    models = json.load(open(out / "evaluation.json"))["models"]
    ce = {label: entry["summary"]["unnormalized"]["ce"] for label, entry in models.items()}
    expected = ce["ar2:gaussian_noise"]["brightness"] - ce["vanilla (baseline)"]["brightness"]
    assert result["delta_ce"][1][1] == pytest.approx(expected)
    assert result["counts"]["off_diagonal_cells"] == 2
    for name in ("transfer.csv", "transfer.md", "transfer.png", "table1.md", "table2.csv"):
        assert (out / name).exists(), name
