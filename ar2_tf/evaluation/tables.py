"""The paper's tables from evaluation results, as Markdown, CSV and JSON.

- Table 1 style: per model, clean error, the CE of each corruption and mCE,
  one table per normalisation (`ar2_tf.evaluation.metrics`);
- Table 2 style: the clean error of each per-corruption repaired model
  (rows: method, columns: the corruption it was repaired for);
- the severity table of one model: error per corruption and severity.

A table is (title, header, rows); rows hold strings and numbers (None for a
value that is missing or undefined). Every file is written atomically
(temporary file, then `os.replace`).
"""

import csv
import io
import os
import tempfile

from ar2_tf.output_files import write_json_atomic
from ar2_tf.safe_paths import sanitize_name

# Column names of the paper's tables (Markdown only; CSV and JSON keep the full names).
SHORT_NAMES = {
    "gaussian_noise": "Gauss", "shot_noise": "Shot", "impulse_noise": "Impulse", "defocus_blur": "Defocus",
    "glass_blur": "Glass", "motion_blur": "Motion", "zoom_blur": "Zoom", "snow": "Snow", "frost": "Frost",
    "fog": "Fog", "brightness": "Bright", "contrast": "Contrast", "elastic_transform": "Elastic",
    "pixelate": "Pixel", "jpeg_compression": "JPEG", "speckle_noise": "Speckle", "gaussian_blur": "GBlur",
    "spatter": "Spatter", "saturate": "Saturate",
}
# (file suffix, summary section, CE key, mCE key, what the numbers are)
NORMALISATIONS = (
    ("", "unnormalized", "ce", "mce", "unnormalised CE: mean error (%) over severities"),
    ("_baseline", "baseline", "ce", "mce", "CE normalised by the baseline (%): 100·ΣE / ΣE_baseline"),
    ("_baseline_relative", "baseline", "relative_ce", "relative_mce",
     "relative CE vs the baseline (%): 100·Σ(E−E_clean) / Σ(E_base−E_base,clean)"),
    ("_alexnet", "alexnet", "ce", "mce", "CE normalised by AlexNet (%), ImageNet-C"),
    ("_alexnet_relative", "alexnet", "relative_ce", "relative_mce", "relative CE vs AlexNet (%), ImageNet-C"),
)


def table1(results, corruptions, section="unnormalized", ce_key="ce", mce_key="mce", title="") -> tuple:
    """Clean error, CE per corruption and mCE of every model that has `section` in its summary."""
    header = ["model", "clean", *corruptions, "mCE"]
    rows = []
    for label, entry in results["models"].items():
        summary = entry.get("summary", {})
        if section not in summary:
            continue
        values = summary[section]
        rows.append([label, summary["clean_error"], *(values[ce_key].get(c) for c in corruptions), values[mce_key]])
    return title, header, rows


def table2(results, corruptions, title="Clean error (%) of each per-corruption model") -> tuple:
    """Rows: method; columns: the corruption each model was repaired for; cells: its clean error."""
    by_method = {}
    for entry in results["models"].values():
        repaired_for = entry.get("config", {}).get("corruption")
        if repaired_for is None:
            continue
        by_method.setdefault(entry["config"].get("method", "?"), {})[repaired_for] = entry["clean"]
    columns = [c for c in corruptions if any(c in cells for cells in by_method.values())]
    columns += sorted({c for cells in by_method.values() for c in cells} - set(columns))
    rows = []
    for method, cells in by_method.items():
        values = [cells.get(c) for c in columns]
        known = [v for v in values if v is not None]
        rows.append([method, *values, sum(known) / len(known) if known else None])
    baseline = results.get("baseline")
    if baseline:
        title = f"{title}; baseline {baseline}: {results['models'][baseline]['clean']:.2f}"
    return title, ["method", *columns, "mean"], rows


def severity_table(entry, corruptions, severities, title="") -> tuple:
    """Error (%) per corruption (rows) and severity (columns), with the mean over severities and corruptions."""
    header = ["corruption", *(f"s{s}" for s in severities), "mean"]
    rows = []
    for corruption in corruptions:
        errors = entry["errors"].get(corruption, {})
        values = [errors.get(str(s)) for s in severities]
        rows.append([corruption, *values, _mean(values)])
    columns = list(zip(*[row[1:] for row in rows])) if rows else []
    rows.append(["mean", *(_mean(column) for column in columns)])
    return title, header, rows


def _mean(values):
    return sum(values) / len(values) if values and None not in values else None


def to_markdown(title, header, rows, digits=1) -> str:
    def cell(value):
        if value is None:
            return "–"
        return f"{value:.{digits}f}" if isinstance(value, float) else str(value)

    names = [SHORT_NAMES.get(name, name) for name in header]
    lines = [f"**{title}**", ""] if title else []
    lines += ["| " + " | ".join(names) + " |", "|" + "|".join(" --- " for _ in names) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def to_csv(header, rows) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows([["" if v is None else v for v in row] for row in rows])
    return buffer.getvalue()


def write_text_atomic(path, text):
    """Writes text to a temporary file in the same folder, then renames it into place."""
    folder = os.path.dirname(os.path.abspath(path))
    with tempfile.NamedTemporaryFile("w", dir=folder, suffix=".tmp", delete=False, encoding="utf-8") as file:
        file.write(text)
        temporary = file.name
    os.replace(temporary, path)


def write_table(out, stem, table) -> list:
    """Writes `<stem>.md`, `.csv` and `.json` into `out`; returns the paths."""
    title, header, rows = table
    paths = [os.path.join(out, f"{stem}.{ext}") for ext in ("md", "csv", "json")]
    write_text_atomic(paths[0], to_markdown(title, header, rows))
    write_text_atomic(paths[1], to_csv(header, rows))
    write_json_atomic(paths[2], {"title": title, "header": header, "rows": rows})
    return paths


def file_label(label: str) -> str:
    """A model label ("ar2:fog", "vanilla (baseline)") as a file-name component."""
    return sanitize_name(label.replace(":", "_").replace(" ", "_").replace("(", "").replace(")", ""))


def write_evaluation_tables(out, results, corruptions, severities) -> list:
    """Every table of an evaluation (see `ar2_tf.evaluation.suite`); returns the paths written."""
    paths = []
    for suffix, section, ce_key, mce_key, what in NORMALISATIONS:
        table = table1(results, corruptions, section, ce_key, mce_key, title=f"Table 1 — {what}")
        if table[2]:
            paths += write_table(out, f"table1{suffix}", table)
    if any(entry.get("config", {}).get("corruption") for entry in results["models"].values()):
        paths += write_table(out, "table2", table2(results, corruptions))
    for label, entry in results["models"].items():
        title = f"{label}: error (%) per corruption and severity; clean {entry['clean']:.2f}"
        paths += write_table(out, f"errors_{file_label(label)}", severity_table(entry, corruptions, severities, title))
    return paths
