"""Transfer matrix (paper Figure 3): how repairing for one corruption changes the others.

Cell (i, j) is the CE change on corruption rows[i] of the model repaired for
corruption columns[j], versus the vanilla (baseline) model:

    Δ_ij = CE(model_j, c_i) − CE(vanilla, c_i)

with CE the unnormalised mean error over severities, in percentage points
(negative: better). The paper's counts are over the off-diagonal cells
(i ≠ j): how many got worse (Δ > 0), and the mean and max of those.
"""

import dataclasses
import os

from ar2_tf.errors import UserError
from ar2_tf.evaluation import suite as evaluation_suite
from ar2_tf.evaluation import tables
from ar2_tf.evaluation.figures import wrap_title
from ar2_tf.output_files import write_json_atomic


def transfer_matrix(baseline_ce: dict, repaired_ce: dict, rows, columns) -> list:
    """Δ[i][j] = repaired_ce[columns[j]][rows[i]] − baseline_ce[rows[i]]; None where a CE is missing."""
    matrix = []
    for row in rows:
        line = []
        for column in columns:
            value, base = repaired_ce.get(column, {}).get(row), baseline_ce.get(row)
            line.append(None if value is None or base is None else value - base)
        matrix.append(line)
    return matrix


def transfer_counts(matrix, rows, columns) -> dict:
    """The paper's summary: off-diagonal cells that got worse, their mean and max; the diagonal mean."""
    off, diagonal = [], []
    for i, row in enumerate(rows):
        for j, column in enumerate(columns):
            if matrix[i][j] is not None:
                (diagonal if row == column else off).append(matrix[i][j])
    worse = [value for value in off if value > 0]
    return {"off_diagonal_cells": len(off), "worse": len(worse), "improved": sum(v < 0 for v in off),
            "mean_worse": sum(worse) / len(worse) if worse else None, "max_worse": max(worse) if worse else None,
            "mean_off_diagonal": sum(off) / len(off) if off else None,
            "mean_diagonal": sum(diagonal) / len(diagonal) if diagonal else None}


def plot_transfer(matrix, rows, columns, path, title="CE change vs vanilla (points)"):
    """Heat map of the matrix (red: worse, blue: better), values in the cells, diagonal outlined."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    values = np.array([[np.nan if v is None else v for v in line] for line in matrix], float)
    limit = float(np.nanmax(np.abs(values))) if np.isfinite(values).any() else 1.0
    size = (1.5 + 0.55 * len(columns), 1.2 + 0.45 * len(rows))
    figure, axes = plt.subplots(figsize=(max(size[0], 4), max(size[1], 3)))
    image = axes.imshow(values, cmap="RdBu_r", vmin=-limit or -1, vmax=limit or 1)
    names = lambda items: [tables.SHORT_NAMES.get(c, c) for c in items]  # noqa: E731
    axes.set_xticks(range(len(columns)), names(columns), rotation=60, ha="right")
    axes.set_yticks(range(len(rows)), names(rows))
    axes.set_xlabel("repaired for")
    axes.set_ylabel("evaluated on")
    for i, row in enumerate(rows):
        for j, column in enumerate(columns):
            if np.isfinite(values[i, j]):
                dark = abs(values[i, j]) > 0.6 * limit  # white on the deep blues and reds
                axes.text(j, i, f"{values[i, j]:.1f}", ha="center", va="center", fontsize=7,
                          color="white" if dark else "black")
            if row == column:
                axes.add_patch(plt.Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, linewidth=1.5))
    figure.colorbar(image, ax=axes, label="Δ CE (points)")
    axes.set_title(wrap_title(title, figure, fontsize=9), fontsize=9)
    figure.tight_layout()
    temporary = f"{path}.tmp.png"
    figure.savefig(temporary, dpi=130, bbox_inches="tight", pad_inches=0.1)  # the whole title, never cut
    plt.close(figure)
    os.replace(temporary, path)


def write_transfer(out, matrix, rows, columns, counts, info=None) -> list:
    """transfer.{csv,md,json} and transfer.png in `out`; returns the paths."""
    os.makedirs(out, exist_ok=True)
    summary = (f"{counts['worse']} of {counts['off_diagonal_cells']} off-diagonal cells worse"
               + (f" (mean +{counts['mean_worse']:.2f}, max +{counts['max_worse']:.2f} points)"
                  if counts["worse"] else ""))
    title = f"CE change vs vanilla (points); rows: evaluated corruption, columns: repaired for. {summary}"
    header = ["evaluated \\ repaired for", *columns]
    rows_out = [[row, *line] for row, line in zip(rows, matrix)]
    paths = [os.path.join(out, name) for name in ("transfer.csv", "transfer.md", "transfer.json", "transfer.png")]
    tables.write_text_atomic(paths[0], tables.to_csv(header, rows_out))
    tables.write_text_atomic(paths[1], tables.to_markdown(title, header, rows_out, digits=2))
    write_json_atomic(paths[2], {"rows": list(rows), "columns": list(columns), "delta_ce": matrix,
                                 "counts": counts, **(info or {})})
    plot_transfer(matrix, rows, columns, paths[3], title=f"CE change vs vanilla (points): {summary}")
    return paths


def run_transfer(specs, baseline, setup: evaluation_suite.EvaluationSetup, *, out,
                 cache_dir=None, unsafe_model_loading=False, verbose=1) -> dict:
    """Evaluates the vanilla model and each per-corruption run; writes the transfer matrix to `out`.

    Args:
        specs: the `ModelSpec`s of run folders of `python -m ar2_tf.train`, one per repaired-for corruption
            (`ar2_tf.runs.evaluated_runs.model_spec`).
        baseline: the vanilla model (a `ModelSpec` or a model file).
        setup: data and corruptions; `corruptions=None` evaluates the runs' corruptions.
        unsafe_model_loading: load model files holding Python lambdas.
    """
    columns = [spec.config.get("corruption") for spec in specs]
    if None in columns:
        raise UserError(f"{specs[columns.index(None)].path!r} is not a run folder of python -m ar2_tf.train; the "
                        "transfer matrix needs run folders (their report.json names the corruption).")
    if len(set(columns)) != len(columns):
        raise UserError(f"two runs were repaired for the same corruption ({', '.join(columns)}); pass one run "
                        "per corruption.")
    if setup.corruptions is None:
        order = evaluation_suite.BENCHMARK_CORRUPTIONS
        setup = dataclasses.replace(setup, corruptions=tuple(sorted(columns, key=lambda c: (
            order.index(c) if c in order else len(order), c))))
    results = evaluation_suite.run_evaluation(specs, setup, baseline=baseline, out=out, cache_dir=cache_dir,
                                              unsafe_model_loading=unsafe_model_loading, verbose=verbose)
    unnormalised = {label: entry["summary"]["unnormalized"]["ce"] for label, entry in results["models"].items()}
    base_ce = unnormalised[results["baseline"]]
    labels = [label for label in results["models"] if label != results["baseline"]]
    repaired = {results["models"][label]["config"]["corruption"]: unnormalised[label] for label in labels}
    rows = list(setup.corruptions)
    matrix = transfer_matrix(base_ce, repaired, rows, columns)
    counts = transfer_counts(matrix, rows, columns)
    info = {"baseline": results["baseline"], "runs": dict(zip(columns, (os.path.abspath(spec.folder) for spec in specs))),
            "metric": "unnormalised CE (mean error over severities), points"}
    write_transfer(out, matrix, rows, columns, counts, info)
    return {"rows": rows, "columns": columns, "delta_ce": matrix, "counts": counts, "results": results}
