"""Collateral damage: each per-corruption model's mean CE change off its target, and AR2 − fine-tuning on it."""

import json
import math

import pytest

from ar2_tf.benchmarking import offtarget, report, run, seed_statistics
from ar2_tf.runs.config import RepairConfig

T_975_2 = 4.302652729911275  # Student t, 97.5 % quantile, 2 degrees of freedom (3 seed pairs)


def _entry(clean, ce):
    return {"clean": clean, "summary": {"unnormalized": {"ce": ce}}}


def _add(runs, entries, method, corruption, seed, clean, ce):
    key = f"{method}_{corruption}_seed{seed}"
    runs.append({"key": key, "method": method, "corruption": corruption, "seed": seed})
    entries[key] = _entry(clean, ce)


def _read(path):
    with open(path) as file:
        return file.read()


def test_offtarget_change_is_the_mean_of_a_transfer_columns_off_diagonal_cells():
    # rows: evaluated fog, contrast, snow; columns: repaired for fog, contrast
    matrix = [[-10.0, 1.0], [3.0, -18.0], [1.0, 4.0]]
    assert offtarget.offtarget_changes(matrix, ["fog", "contrast", "snow"], ["fog", "contrast"]) == [2.0, 2.5]
    matrix[2][1] = None  # a missing cell: no mean over fewer corruptions
    assert offtarget.offtarget_changes(matrix, ["fog", "contrast", "snow"], ["fog", "contrast"]) == [2.0, None]
    assert offtarget.offtarget_changes([[-10.0]], ["fog"], ["fog"]) == [None]  # nothing off the target


def test_one_seed_offtarget_table_by_hand_and_its_files(tmp_path):
    labels = run.method_labels(RepairConfig(iterations=2))
    runs = [{"key": "vanilla", "method": "vanilla", "corruption": "all"}]
    entries = {"vanilla": _entry(7.0, {"fog": 20.0, "contrast": 30.0, "snow": 25.0})}
    models = {("ar2", "fog"): (9.0, 10.0, 33.0, 26.0),  # clean, CE on fog, contrast, snow
              ("ar2", "contrast"): (11.0, 21.0, 12.0, 29.0),
              ("bn_adapt", "fog"): (8.0, 15.0, 29.0, 24.0),  # no model for contrast
              ("ar2+tent", "fog"): (10.0, 8.0, 27.0, 22.0)}
    for (method, corruption), (clean, *ce) in models.items():
        _add(runs, entries, method, corruption, 0, clean, dict(zip(("fog", "contrast", "snow"), ce)))
    built, records = report.write_tables(str(tmp_path), runs, entries, ["fog", "contrast"],
                                         ["fog", "contrast", "snow"], labels, "vanilla", (0,))
    # AR2 for fog: ((33 − 30) + (26 − 25)) / 2 = 2; for contrast: ((21 − 20) + (29 − 25)) / 2 = 2.5.
    # BN adaptation for fog: ((29 − 30) + (24 − 25)) / 2 = −1; AR2 + TENT for fog, against vanilla: −3.
    title, header, rows = built["offtarget"]
    assert header == ["method", "budget", "clean", "mCE (targets)", "fog", "contrast", "mean off-target"]
    assert rows == [["AR2", "4 epochs", 10.0, 11.0, 2.0, 2.5, 2.25],
                    ["BN adaptation", "1 epoch", 8.0, None, -1.0, None, None],
                    ["AR2 + TENT", "4 epochs + 1 step per test batch", 10.0, None, -3.0, None, None]]
    assert title.startswith("Collateral damage: mean CE change")
    assert [(r["method"], r["corruption"], r["values"], r["mean"], r["n"]) for r in records["offtarget"]] == [
        ("ar2", "fog", [2.0], 2.0, 1), ("ar2", "contrast", [2.5], 2.5, 1), ("bn_adapt", "fog", [-1.0], -1.0, 1),
        ("ar2+tent", "fog", [-3.0], -3.0, 1)]
    assert records["paired_columns"] == [] and "paired_columns" not in built  # one seed: no interval
    assert _read(tmp_path / "offtarget.csv").splitlines()[:3] == [
        "method,budget,clean,mCE (targets),fog,contrast,mean off-target", "AR2,4 epochs,10.0,11.0,2.0,2.5,2.25",
        "BN adaptation,1 epoch,8.0,,-1.0,,"]
    assert "| AR2 | 4 epochs | 10.0 | 11.0 | 2.0 | 2.5 | 2.2 |" in _read(tmp_path / "offtarget.md")
    assert json.loads(_read(tmp_path / "offtarget.json"))["rows"][0][-1] == 2.25


def _three_seeds():
    """Vanilla, AR2 and fine-tuning (same epochs) for fog and contrast, three seeds, evaluated on fog, snow and
    contrast."""
    runs = [{"key": "vanilla", "method": "vanilla", "corruption": "all", "seed": s} for s in (0, 1, 2)]
    entries = {"vanilla": _entry(7.0, {"fog": 30.0, "snow": 25.0, "contrast": 40.0})}
    fog = {"ar2": ((8.0, 20.0, 26.0), (8.5, 21.0, 25.0), (9.0, 22.0, 27.0)),  # clean, CE on fog, snow per seed
           "finetune_epochs": ((9.0, 21.0, 28.0), (8.0, 22.0, 27.5), (9.5, 23.1, 29.0))}
    for method, by_seed in fog.items():
        for seed, (clean, ce_fog, ce_snow) in enumerate(by_seed):
            _add(runs, entries, method, "fog", seed, clean, {"fog": ce_fog, "snow": ce_snow,
                                                              "contrast": 40.0 + (method != "ar2")})
            shift = float(method != "ar2")  # the contrast models: fine-tuning one point worse everywhere
            _add(runs, entries, method, "contrast", seed, 8.0, {"fog": 30.0 + shift, "snow": 25.0 + shift,
                                                                 "contrast": 20.0 + shift})
    return runs, entries


def test_several_seeds_pair_ar2_with_fine_tuning_on_clean_error_and_offtarget_change(tmp_path):
    runs, entries = _three_seeds()
    labels = run.method_labels(RepairConfig(iterations=2))
    built, records = report.write_tables(str(tmp_path), runs, entries, ["fog", "contrast"],
                                         ["fog", "snow", "contrast"], labels, "vanilla", (0, 1, 2))
    rows = records["paired_columns"]
    assert [(row["corruption"], row["column"]) for row in rows] == [
        ("fog", "target CE"), ("fog", "clean error"), ("fog", "off-target CE change"),
        ("contrast", "target CE"), ("contrast", "clean error"), ("contrast", "off-target CE change")]
    by = {(row["corruption"], row["column"]): row for row in rows}
    # the target CE rows are `paired`'s, as they were
    assert [by["fog", "target CE"], by["contrast", "target CE"]] == [
        {"column": "target CE", **row} for row in records["paired"]]
    # clean error, seed by seed: 8 − 9, 8.5 − 8, 9 − 9.5 = −1, 0.5, −0.5: mean −1/3, sd √(7/12)
    clean = by["fog", "clean error"]
    half = T_975_2 * math.sqrt(7 / 12) / math.sqrt(3)
    assert clean["mean"] == pytest.approx(-1 / 3) and clean["n"] == 3
    assert (clean["low"], clean["high"]) == (pytest.approx(-1 / 3 - half), pytest.approx(-1 / 3 + half))
    assert clean["verdict"] == "tie"
    # off-target (snow, contrast) of the fog models: AR2 (1 + 0)/2, (0 + 0)/2, (2 + 0)/2 = 0.5, 0, 1;
    # fine-tuning (3 + 1)/2, (2.5 + 1)/2, (4 + 1)/2 = 2, 1.75, 2.5; differences −1.5, −1.75, −1.5
    off = by["fog", "off-target CE change"]
    half = T_975_2 * math.sqrt(1 / 48) / math.sqrt(3)
    assert off["mean"] == pytest.approx(-4.75 / 3)
    assert (off["low"], off["high"]) == (pytest.approx(-4.75 / 3 - half), pytest.approx(-4.75 / 3 + half))
    assert off["verdict"] == "AR2 lower"
    # the contrast models: off-target 0 against 1 in every seed (no spread), clean 8 against 8
    assert by["contrast", "off-target CE change"]["mean"] == pytest.approx(-1.0)
    assert by["contrast", "off-target CE change"]["verdict"] == "AR2 lower"
    assert by["contrast", "clean error"]["verdict"] == "tie"
    # the off-target table: mean ± std over the seeds of each cell, each seed's mean over the columns first
    table = {row[0]: row for row in built["offtarget"][2]}
    assert table["AR2"] == ["AR2", "4 epochs", seed_statistics.format_cell(*seed_statistics.mean_std([8.0, 8.25, 8.5])),
                            seed_statistics.format_cell(*seed_statistics.mean_std([20.0, 20.5, 21.0])), "0.5 ± 0.5", "0.0 ± 0.0",
                            seed_statistics.format_cell(*seed_statistics.mean_std([0.25, 0.0, 0.5]))]
    assert [r["values"] for r in records["offtarget"] if r["method"] == "finetune_epochs"] == [[2.0, 1.75, 2.5],
                                                                                              [1.0, 1.0, 1.0]]
    # files: paired keeps its columns; paired_columns names the column first
    assert _read(tmp_path / "paired.csv").splitlines()[0] == "corruption,mean,low,high,n,verdict"
    lines = _read(tmp_path / "paired_columns.csv").splitlines()
    assert lines[0] == "column,corruption,mean,low,high,n,verdict" and len(lines) == 7
    assert lines[3].startswith("off-target CE change,fog,-1.58") and lines[3].endswith(",3,AR2 lower")
    assert json.loads(_read(tmp_path / "paired_columns.json"))["header"][0] == "column"
    assert "| off-target CE change | fog | -1.6 |" in _read(tmp_path / "paired_columns.md")
    sentences = report.paired_sentences([clean, off])
    assert sentences[0].startswith("- fog: AR2 − fine-tuning (same epochs), clean error -0.33 points, 95 % "
                                   "t-interval over 3 seed pairs [")
    assert sentences[0].endswith(": tie.")
    assert sentences[1].startswith("- fog: AR2 − fine-tuning (same epochs), off-target CE change -1.58 points")
    assert sentences[1].endswith(": AR2 lower.")


@pytest.mark.parametrize("seed_list", [(0,), (0, 1)])
def test_with_one_evaluated_corruption_offtarget_values_are_none(tmp_path, seed_list):
    labels = run.method_labels(RepairConfig(iterations=2))
    runs = [{"key": "vanilla", "method": "vanilla", "corruption": "all", "seed": s} for s in seed_list]
    entries = {"vanilla": _entry(7.0, {"fog": 30.0})}
    for seed in seed_list:
        for method, (clean, ce) in (("finetune_epochs", (9.0 + seed, 21.0)), ("ar2", (8.0, 20.0 + seed))):
            _add(runs, entries, method, "fog", seed, clean, {"fog": ce})
    built, records = report.write_tables(str(tmp_path), runs, entries, ["fog"], ["fog"], labels, "vanilla",
                                         seed_list)
    assert all(r["values"] == [None] * len(seed_list) and r["mean"] is None for r in records["offtarget"])
    table = {row[0]: row for row in built["offtarget"][2]}
    assert table["AR2"][-2:] == ([None, None] if len(seed_list) == 1 else ["–", "–"])
    if len(seed_list) > 1:  # no off-target corruption: no off-target pair, the other columns still compared
        assert [row["column"] for row in records["paired_columns"]] == ["target CE", "clean error"]
        assert records["paired_columns"][1]["mean"] == pytest.approx(-1.5)
