"""Table 1 / Table 2 / severity tables as Markdown, CSV and JSON, written atomically."""

import csv
import io
import json
import os

import pytest

from ar2_tf.evaluation import metrics, tables


def _results():
    errors = {"vanilla": {"fog": {"1": 10.0, "2": 30.0}, "snow": {"1": 20.0, "2": 40.0}},
              "ar2:fog": {"fog": {"1": 5.0, "2": 15.0}, "snow": {"1": 20.0, "2": 50.0}},
              "ar2:snow": {"fog": {"1": 10.0, "2": 30.0}, "snow": {"1": 10.0, "2": 20.0}}}
    clean = {"vanilla": 5.0, "ar2:fog": 6.0, "ar2:snow": 7.5}
    configs = {"vanilla": {}, "ar2:fog": {"method": "ar2", "corruption": "fog"},
               "ar2:snow": {"method": "ar2", "corruption": "snow"}}
    reference = {"name": "vanilla", "clean": 5.0, "errors": errors["vanilla"]}
    models = {label: {"clean": clean[label], "errors": errors[label], "config": configs[label],
                      "summary": metrics.summarize(clean[label], errors[label], reference=reference)}
              for label in errors}
    return {"baseline": "vanilla", "models": models}


def test_table1_rows_hold_clean_ce_and_mce():
    title, header, rows = tables.table1(_results(), ["fog", "snow"])
    assert header == ["model", "clean", "fog", "snow", "mCE"]
    assert rows[1] == ["ar2:fog", 6.0, 10.0, 35.0, 22.5]
    _, _, baseline_rows = tables.table1(_results(), ["fog", "snow"], "baseline")
    assert baseline_rows[1][2] == pytest.approx(50.0)  # (5 + 15) / (10 + 30)
    assert baseline_rows[0][-1] == pytest.approx(100.0)


def test_table2_puts_clean_errors_under_the_repaired_for_corruption():
    title, header, rows = tables.table2(_results(), ["snow", "fog"])
    assert header == ["method", "snow", "fog", "mean"]
    assert rows == [["ar2", 7.5, 6.0, 6.75]]
    assert "baseline vanilla: 5.00" in title


def test_severity_table_has_means_both_ways():
    entry = _results()["models"]["ar2:fog"]
    _, header, rows = tables.severity_table(entry, ["fog", "snow", "frost"], [1, 2])
    assert header == ["corruption", "s1", "s2", "mean"]
    assert rows[0] == ["fog", 5.0, 15.0, 10.0]
    assert rows[2] == ["frost", None, None, None]
    assert rows[3] == ["mean", None, None, None]  # a missing corruption leaves the overall mean undefined
    _, _, complete = tables.severity_table(entry, ["fog", "snow"], [1, 2])
    assert complete[-1] == ["mean", 12.5, 32.5, 22.5]


def test_markdown_uses_short_names_and_marks_missing_values():
    text = tables.to_markdown("T", ["model", "gaussian_noise", "jpeg_compression"], [["m", 12.345, None]])
    assert text.splitlines()[0] == "**T**"
    assert "| model | Gauss | JPEG |" in text
    assert "| m | 12.3 | – |" in text


def test_write_table_writes_three_formats_atomically(tmp_path):
    table = tables.table1(_results(), ["fog", "snow"], title="Table 1")
    paths = tables.write_table(str(tmp_path), "table1", table)
    assert sorted(os.listdir(tmp_path)) == ["table1.csv", "table1.json", "table1.md"]  # no temporary files left
    parsed = list(csv.reader(io.StringIO(open(paths[1]).read())))
    assert parsed[0] == ["model", "clean", "fog", "snow", "mCE"]
    assert float(parsed[2][-1]) == 22.5
    loaded = json.load(open(paths[2]))
    assert loaded["title"] == "Table 1" and loaded["rows"][2][0] == "ar2:snow"


def test_evaluation_tables_cover_every_normalisation_present(tmp_path):
    results = _results()
    paths = tables.write_evaluation_tables(str(tmp_path), results, ["fog", "snow"], [1, 2])
    names = {os.path.basename(p) for p in paths}
    assert {"table1.md", "table1_baseline.csv", "table1_baseline_relative.json", "table2.md",
            "errors_ar2_fog.csv", "errors_vanilla.md"} <= names
    assert not any(name.startswith("table1_alexnet") for name in names)


def test_file_labels_are_safe_names():
    assert tables.file_label("vanilla (baseline)") == "vanilla_baseline"
    assert "/" not in tables.file_label("../../etc:x")
