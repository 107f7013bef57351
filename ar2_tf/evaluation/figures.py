"""Figures of evaluation results: Table 1 as bars, error against severity, a grid of attention panels.

Pure functions: each takes plain data (numbers keyed by method and corruption, or image arrays) and a PNG
path, and writes that one file. Methods keep their table names; corruptions are written as the tables
write them (`tables.SHORT_NAMES`). Colours are the Okabe-Ito palette, safe for colour-blind readers.
"""

import os

from ar2_tf.evaluation import tables

# Okabe & Ito (2008), "Color universal design": distinguishable under the common colour-vision deficiencies
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000")
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
DPI = 110
GRID_DPI = 100  # image grids: tiles drawn pixel for pixel, a 96-pixel tile about 1 inch wide


def seed_cells(header, rows) -> dict:
    """{method: {column: [value per seed]}} from a `table1_seeds.json` (header method, seed, column, value)."""
    index = {name: header.index(name) for name in ("method", "column", "value")}
    cells = {}
    for row in rows:
        column = cells.setdefault(row[index["method"]], {}).setdefault(row[index["column"]], [])
        column.append(float(row[index["value"]]))
    return cells


def severity_curves(models: dict, runs, labels: dict, baseline: str) -> dict:
    """{corruption: {method label: [mean error at severity 1..5]}} from an evaluation's `evaluation.json`.

    Each corruption's curves are of the models repaired for it, averaged over seeds, and of those models under a
    test-time adaptation (the benchmark's "ar2+tent" rows) apart from them; models trained for all corruptions at
    once, the baseline ("vanilla") and test-time adaptations of it give one curve in every panel.

    Args:
        models: the evaluation's "models" (name -> {"source", "adaptation", "errors": {corruption: {s: %}}}).
        runs: the benchmark's "runs" ({"dir", "method", "corruption"} per trained model).
        labels: the benchmark's "labels" (method key -> {"label"}).
        baseline: the evaluation's "baseline" model name.
    """
    by_dir = {os.path.normpath(run["dir"]): run for run in runs}
    curves = {}
    for name, model in models.items():
        run = by_dir.get(os.path.dirname(os.path.normpath(model.get("source") or "")))
        if run is not None:  # a repaired model, or one under a test-time adaptation: its own row ("ar2+tent")
            key = run["method"] + (f"+{model['adaptation']}" if model.get("adaptation") else "")
            trained_for = run["corruption"]
        elif name == baseline:
            key, trained_for = "vanilla", None
        elif model.get("adaptation"):
            key, trained_for = model["adaptation"], None
        else:
            continue
        label = labels.get(key, {}).get("label", key)
        for corruption, errors in model["errors"].items():
            if trained_for in (None, "all", corruption):
                series = [errors[s] for s in sorted(errors, key=int)]
                curves.setdefault(corruption, {}).setdefault(label, []).append(series)
    return {corruption: {label: [sum(values) / len(values) for values in zip(*seeds)]
                         for label, seeds in methods.items()}
            for corruption, methods in curves.items()}


def plot_seed_bars(cells: dict, columns, path, title="Error (%) per corruption, mean over seeds", figsize=None,
                   xlabel=None):
    """Grouped bars: one group per column (clean error, then each corruption's CE), one bar per method at
    its mean over seeds, error bars the seeds' sample standard deviation, as Table 1's ± (none for one value).

    `figsize`: inches (default: wide enough for every column); tick labels slant when a column is narrow."""
    import numpy as np

    plt = _pyplot()
    methods = list(cells)
    width = 0.8 / len(methods)
    figure, axes = plt.subplots(figsize=figsize or (max(6.0, 1.1 * len(columns) + 2.0), 4.2))
    for i, method in enumerate(methods):
        values = [cells[method].get(column, []) for column in columns]
        means = [np.mean(v) if v else np.nan for v in values]
        spread = [np.std(v, ddof=1) if len(v) > 1 else 0.0 for v in values]  # Table 1's ± (sample std)
        axes.bar(np.arange(len(columns)) + (i - (len(methods) - 1) / 2) * width, means, width,
                 yerr=spread if any(spread) else None, capsize=2, color=PALETTE[i % len(PALETTE)], label=method,
                 edgecolor="white", linewidth=0.5)
    narrow = figure.get_figwidth() / len(columns) < 0.9  # inches per column: upright names would overlap
    axes.set_xticks(range(len(columns)), [_name(column) for column in columns], rotation=35 if narrow else 0,
                    ha="right" if narrow else "center", rotation_mode="anchor")
    axes.set_ylabel("error (%)")
    if xlabel:
        axes.set_xlabel(xlabel)
    axes.grid(axis="y", alpha=0.3)
    axes.set_axisbelow(True)
    axes.legend(fontsize=8, frameon=False, ncol=min(3, len(methods)), loc="upper right")
    axes.set_title(wrap_title(title, figure), fontsize=10)
    _save(figure, path)


def severity_grid(count) -> tuple:
    """(rows, columns, figsize in inches) of `plot_severity_lines` for `count` panels: 3 columns at most."""
    columns = min(3, count)
    rows = -(-count // columns)
    return rows, columns, (3.0 * columns + 0.4, 2.5 * rows + 0.9)


def plot_severity_lines(curves: dict, path, title="Error (%) against severity", severities=(1, 2, 3, 4, 5)):
    """One small panel per corruption, one line per method: error at each of `severities` (the series' x)."""
    plt = _pyplot()
    corruptions = list(curves)
    methods = list(dict.fromkeys(label for methods in curves.values() for label in methods))
    rows, columns, figsize = severity_grid(len(corruptions))
    figure, grid = plt.subplots(rows, columns, figsize=figsize, squeeze=False)
    for axes, corruption in zip(grid.flat, corruptions):
        for i, method in enumerate(methods):
            series = curves[corruption].get(method)
            if series:
                axes.plot(list(severities)[:len(series)], series, marker=MARKERS[i % len(MARKERS)], markersize=4,
                          color=PALETTE[i % len(PALETTE)], label=method, linewidth=1.3)
        axes.set_title(_name(corruption), fontsize=10)
        axes.set_xticks(list(severities))
        axes.grid(alpha=0.3)
        axes.tick_params(labelsize=8)
    for column in range(columns):  # under the lowest panel of each column
        grid[(len(corruptions) - 1 - column) // columns, column].set_xlabel("severity", fontsize=9)
    for axes in grid[:, 0]:
        axes.set_ylabel("error (%)", fontsize=9)
    for axes in list(grid.flat)[len(corruptions):]:
        axes.axis("off")
    handles, names = grid.flat[0].get_legend_handles_labels()
    spare = list(grid.flat)[len(corruptions):]
    if spare:  # the legend fills the first empty panel
        spare[0].legend(handles, names, loc="center", fontsize=9, frameon=False)
    else:
        figure.legend(handles, names, loc="lower center", ncol=min(len(methods), 5), fontsize=8, frameon=False)
    title = wrap_title(title, figure)
    figure.suptitle(title, fontsize=11)
    top = 1 - (title.count("\n") + 1.5) * 11 * 1.3 / 72 / figure.get_figheight()  # below the title's lines
    figure.tight_layout(rect=(0, 0 if spare else 0.06, 1, top))
    _save(figure, path, tight=False)


def plot_panel_grid(panels, column_titles, path, row_titles=None, title=None, caption=None):
    """A grid of image tiles: `panels` float [N, S, C·S, 3] in [0, 1] (rows of C tiles side by side, as
    `ar2_tf.method.callbacks.cam_panels` makes them), a title over each column, an optional one per row.
    Each tile is drawn at its own pixel size, so upscaled pixels stay sharp."""
    import numpy as np

    plt = _pyplot()
    panels = np.clip(np.asarray(panels, np.float32), 0.0, 1.0)
    count, columns = panels.shape[0], len(column_titles)
    tile = panels.shape[2] // columns
    figure, grid = plt.subplots(count, columns, figsize=panel_grid_figsize(tile, count, columns), squeeze=False)
    for r in range(count):
        for c in range(columns):
            axes = grid[r, c]
            axes.imshow(panels[r, :, c * tile:(c + 1) * tile], interpolation="nearest")
            axes.set_xticks([])
            axes.set_yticks([])
            if r == 0:
                axes.set_title(column_titles[c], fontsize=9)
            if c == 0 and row_titles:
                axes.set_ylabel(row_titles[r], fontsize=8.5)
    if title:
        figure.suptitle(wrap_title(title, figure, fontsize=11), fontsize=11)
    bottom = 0.0
    if caption:
        caption = wrap_title(caption, figure, fontsize=8.5)
        figure.text(0.5, 0.005, caption, ha="center", va="bottom", fontsize=8.5)
        bottom = (caption.count("\n") + 1.6) * 8.5 * 1.3 / 72 / figure.get_figheight()  # its lines' height
    figure.tight_layout(rect=(0, bottom, 1, 1), h_pad=0.3, w_pad=0.3)
    _save(figure, path, tight=False, dpi=GRID_DPI)


def panel_grid_figsize(tile, rows, columns) -> tuple:
    """(width, height) in inches of `plot_panel_grid`: tiles of `tile` pixels drawn pixel for pixel at
    `GRID_DPI`, with room for the titles."""
    inches = tile / GRID_DPI
    return (inches + 0.1) * columns + 1.0, (inches + 0.1) * rows + 1.6


def _name(column):
    return tables.SHORT_NAMES.get(column, column)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def wrap_title(text, figure, fontsize=10):
    """`text` broken into lines that fit the figure's width (about 0.55 em per character)."""
    import textwrap

    characters = int(figure.get_figwidth() * 72 / (0.55 * fontsize))
    return textwrap.fill(text, max(20, characters))


def _save(figure, path, tight=True, dpi=DPI):
    """Writes the PNG atomically; `tight`: tight layout first."""
    plt = _pyplot()
    if tight:
        figure.tight_layout()
    temporary = f"{path}.tmp.png"
    figure.savefig(temporary, dpi=dpi)
    plt.close(figure)
    os.replace(temporary, path)
