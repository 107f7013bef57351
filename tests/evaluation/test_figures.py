"""Figures: the data they are drawn from, and each plot written as a PNG of its figure's size."""

import numpy as np
import pytest

from ar2_tf.evaluation import figures
from ar2_tf.evaluation.transfer import plot_transfer
from tests.helpers import png_size


def test_seed_cells_gather_every_seed_of_a_cell():
    header = ["method", "seed", "column", "value"]
    rows = [["AR2", 0, "fog", 12.0], ["AR2", 1, "fog", 14.0], ["vanilla", 0, "fog", 20.0], ["AR2", 0, "clean", 8.0]]
    assert figures.seed_cells(header, rows) == {"AR2": {"fog": [12.0, 14.0], "clean": [8.0]},
                                                "vanilla": {"fog": [20.0]}}


def _errors(offset):
    return {c: {str(s): offset + s for s in range(1, 6)} for c in ("fog", "contrast")}


def test_severity_curves_average_the_seeds_of_the_model_repaired_for_each_corruption():
    models = {
        "ar2:fog": {"source": "/out/runs/ar2_fog/model.keras", "errors": _errors(10.0)},
        "ar2:fog#2": {"source": "/out/runs/ar2_fog_seed1/model.keras", "errors": _errors(20.0)},
        "ar2:fog + TENT": {"source": "/out/runs/ar2_fog/model.keras", "adaptation": "tent", "errors": _errors(2.0)},
        "ar2:contrast": {"source": "/out/runs/ar2_contrast/model.keras", "errors": _errors(40.0)},
        "base": {"source": "pretrained.h5", "errors": _errors(30.0)},
        "base + TENT": {"source": "pretrained.h5", "adaptation": "tent", "errors": _errors(5.0)},
    }
    runs = [{"dir": "/out/runs/ar2_fog", "method": "ar2", "corruption": "fog"},
            {"dir": "/out/runs/ar2_fog_seed1/", "method": "ar2", "corruption": "fog"},
            {"dir": "/out/runs/ar2_contrast", "method": "ar2", "corruption": "contrast"}]
    labels = {"ar2": {"label": "AR2"}, "vanilla": {"label": "vanilla"}, "tent": {"label": "TENT (test-time)"},
              "ar2+tent": {"label": "AR2 + TENT"}}
    curves = figures.severity_curves(models, runs, labels, baseline="base")
    assert curves["fog"]["AR2"] == pytest.approx([16.0, 17.0, 18.0, 19.0, 20.0])  # mean of the two fog seeds
    assert curves["fog"]["AR2 + TENT"] == pytest.approx([3.0, 4.0, 5.0, 6.0, 7.0])  # a row of its own
    assert curves["contrast"]["AR2"] == pytest.approx([41.0, 42.0, 43.0, 44.0, 45.0])  # never the fog models
    for corruption in ("fog", "contrast"):
        assert curves[corruption]["vanilla"] == pytest.approx([31.0, 32.0, 33.0, 34.0, 35.0])
        assert curves[corruption]["TENT (test-time)"] == pytest.approx([6.0, 7.0, 8.0, 9.0, 10.0])


def test_wrapped_titles_fit_the_figure_width():
    plt = figures._pyplot()
    figure = plt.figure(figsize=(4, 3))
    text = figures.wrap_title("word " * 60, figure, fontsize=10)
    plt.close(figure)
    assert text.count("\n") >= 3
    assert max(len(line) for line in text.splitlines()) <= int(4 * 72 / (0.55 * 10))


def test_seed_bars_png(tmp_path):
    cells = {"vanilla": {"clean": [7.0], "fog": [16.0]}, "AR2": {"clean": [8.0, 8.4], "fog": [12.0, 12.6]}}
    path = tmp_path / "bars.png"
    figures.plot_seed_bars(cells, ["clean", "fog"], str(path), title="a title " * 20)
    assert png_size(path) == (round(6.0 * figures.DPI), round(4.2 * figures.DPI))  # figsize x dpi, title wrapped


def test_severity_lines_png(tmp_path):
    curves = {c: {"vanilla": [10, 20, 30, 40, 50], "AR2": [9, 15, 20, 25, 30]} for c in ("fog", "contrast", "snow",
                                                                                        "gaussian_noise")}
    path = tmp_path / "lines.png"
    figures.plot_severity_lines(curves, str(path))
    # 4 panels: 3 columns, 2 rows
    assert png_size(path) == (round((3 * 3.0 + 0.4) * figures.DPI), round((2 * 2.5 + 0.9) * figures.DPI))


def test_panel_grid_draws_tiles_at_their_pixel_size(tmp_path):
    tile, rows, columns = 48, 3, 4
    panels = np.random.default_rng(0).uniform(size=(rows, tile, columns * tile, 3))
    path = tmp_path / "grid.png"
    figures.plot_panel_grid(panels, ["a", "b", "c", "d"], str(path), row_titles=["x", "y", "z"], title="grid",
                            caption="a caption " * 30)
    inches = tile / figures.GRID_DPI
    assert png_size(path) == (round(((inches + 0.1) * columns + 1.0) * figures.GRID_DPI),
                              round(((inches + 0.1) * rows + 1.6) * figures.GRID_DPI))


def test_transfer_png_keeps_a_long_title_whole(tmp_path):
    from matplotlib.image import imread

    path = tmp_path / "transfer.png"
    plot_transfer([[-3.0, 1.0], [2.0, -5.0]], ["fog", "contrast"], ["fog", "contrast"], str(path),
                  title="a long title that once ran past the left edge " * 4)
    width, height = png_size(path)
    assert width < 700  # wrapped: the title does not stretch the picture
    pixels = imread(path)[..., :3]
    # nothing drawn touches the edges: no text is cut off
    for edge in (pixels[0], pixels[-1], pixels[:, 0], pixels[:, -1]):
        assert edge.min() > 0.95
