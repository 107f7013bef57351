"""Renders the README's and the docs' figures from committed results and one finished repair run, into docs/figures/.

    python scripts/figures.py                                   # every figure, default folders
    python scripts/figures.py --benchmark results/cifar10_benchmark_seeds \
        --run /work/main/results/cifar10_benchmark_guard/runs/ar2_fog --out docs/figures

Figures: Table 1 as bars with the seeds' spread (table1_bars.png), error against severity
(severity_lines.png), the benchmark's transfer matrices (transfer_<method>.png) and the paper's Figure 1
from the run's models (figure1_cam_grid.png; `--run ""` skips it). Reads the run folder, writes nothing there.
"""

import argparse
import glob
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from ar2_tf.evaluation import figures  # noqa: E402
from ar2_tf.evaluation.transfer import plot_transfer  # noqa: E402

PRETRAINED = "../shared/models/cifar10_resnet20v1.h5"
DATA = "../shared/data/cifar10/cifar10_exact_official_subset.npz"
CAM_IMAGES = 6  # rows of Figure 1
CAM_CANDIDATES = 1017  # test images searched for them (the whole subset)
CAM_TILE = 96  # pixels per tile: each 32-pixel image upscaled 3x, nearest neighbour


def read_json(path):
    with open(path) as handle:
        return json.load(handle)


def table1_bars(benchmark, out):
    seeds = read_json(os.path.join(benchmark, "table1_seeds.json"))
    table = read_json(os.path.join(benchmark, "table1.json"))
    cells = figures.seed_cells(seeds["header"], seeds["rows"])
    columns = [c for c in table["header"] if c not in ("method", "budget") and not c.startswith("mCE")]
    count = len(read_json(os.path.join(benchmark, "benchmark.json"))["seeds"]["seeds"])
    path = os.path.join(out, "table1_bars.png")
    once = [method for method, values in cells.items() if all(len(v) == 1 for v in values.values())]
    title = (f"Table 1: clean error and CE (%, mean error over severities 1-5); bars: mean over {count} seeds, "
             f"whiskers: their std" + (f" ({', '.join(once)}: evaluated once)" if once else ""))
    figures.plot_seed_bars(cells, columns, path, title=title)
    return path


def severity_lines(benchmark, out):
    benchmark_info = read_json(os.path.join(benchmark, "benchmark.json"))
    evaluation = read_json(os.path.join(benchmark, "evaluation", "evaluation.json"))
    curves = figures.severity_curves(evaluation["models"], benchmark_info["runs"], benchmark_info["labels"],
                                     evaluation["baseline"])
    labels = benchmark_info["labels"]
    keys = [*benchmark_info["methods"], *(f"{key}+tent" for key in benchmark_info["methods"])]  # Table 1's rows
    order = [labels[key]["label"] for key in keys if key in labels]
    curves = {c: {label: curves[c][label] for label in order if label in curves[c]}
              for c in benchmark_info["evaluated"] if c in curves}
    path = os.path.join(out, "severity_lines.png")
    figures.plot_severity_lines(curves, path, title="Error (%) against severity; each repair is the model repaired "
                                                    "for that panel's corruption, mean over seeds")
    return path


def transfer_matrices(benchmark, out):
    labels = read_json(os.path.join(benchmark, "benchmark.json"))["labels"]
    paths = []
    for source in sorted(glob.glob(os.path.join(benchmark, "transfer_*", "transfer.json"))):
        data = read_json(source)
        key = os.path.basename(os.path.dirname(source))[len("transfer_"):]
        counts = data["counts"]
        title = (f"{labels.get(key, {}).get('label', key)}: CE change vs vanilla (points); "
                 f"{counts['worse']} of {counts['off_diagonal_cells']} off-diagonal cells worse "
                 f"(mean +{counts['mean_worse']:.2f}, max +{counts['max_worse']:.2f})")
        paths.append(os.path.join(out, f"transfer_{key}.png"))
        plot_transfer(data["delta_ce"], data["rows"], data["columns"], paths[-1], title=title)
    return paths


def cam_grid(run, out):
    """Figure 1: the first test images the pretrained model gets wrong under the run's corruption and the
    repaired model gets right, with both models' attention."""
    import numpy as np
    import tensorflow as tf

    from ar2_tf.corruptions import corrupt
    from ar2_tf.data.preprocessing import get_preprocessor
    from ar2_tf.method.callbacks import cam_panels
    from ar2_tf.method.repair_model import RepairModel
    from ar2_tf.models.loading import load_model_file

    report = read_json(os.path.join(run, "report.json"))
    config, preprocessing = report["config"], report["preprocessing"]
    corruption, severity = config["corruption"], config["severity"]
    pretrained = load_model_file(config["model"] if os.path.exists(config["model"]) else PRETRAINED)
    repaired = load_model_file(os.path.join(run, "model.keras"))
    data = np.load(config["data_dir"] if os.path.exists(config["data_dir"] or "") else DATA)
    clean, labels = data["x_test"][:CAM_CANDIDATES], data["y_test"][:CAM_CANDIDATES].astype(int)
    corrupted = corrupt(tf.constant(clean), corruption, severity, tf.constant([0, 1000 * severity])).numpy()
    preprocess = get_preprocessor(preprocessing)
    before = np.argmax(pretrained.predict(preprocess(corrupted), batch_size=256, verbose=0), axis=-1)
    after = np.argmax(repaired.predict(preprocess(corrupted), batch_size=256, verbose=0), axis=-1)
    chosen = np.flatnonzero((before != labels) & (after == labels))[:CAM_IMAGES]
    model = RepairModel(repaired, reference=pretrained, feature_layer=config["feature_layer"],
                        dense_layer=config["dense_layer"], attention=config["repair"]["attention"])
    panels = cam_panels(model, clean[chosen], corrupted[chosen], preprocessing, tile=CAM_TILE).numpy()
    names = report.get("class_names") or [str(i) for i in range(10)]
    rows = [f"#{i}: {names[labels[i]]}\npretrained: {names[before[i]]}" for i in chosen]
    columns = ["clean", f"{corruption},\nseverity {severity}", "pretrained\nmodel's CAM", "repaired\nmodel's CAM"]
    path = os.path.join(out, "figure1_cam_grid.png")
    figures.plot_panel_grid(
        panels, columns, path, row_titles=rows,
        title=f"AR2 repaired for {corruption}: attention before and after",
        caption=(f"The first {len(chosen)} test images (indices {', '.join(map(str, chosen))} of the CIFAR-10 test "
                 f"subset) that the pretrained model misclassifies under {corruption} (severity {severity}) and "
                 f"the repaired model classifies correctly. Maps: each model's CAM of the pretrained model's class on "
                 f"the clean image (red: high), half-blended over the corrupted image. Run: {os.path.basename(run)}."))
    return path


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--benchmark", default="results/cifar10_benchmark_seeds", help="a benchmark's --out folder")
    parser.add_argument("--run", default="/work/main/results/cifar10_benchmark_guard/runs/ar2_fog",
                        help="a finished AR2 run folder (report.json, model.keras) for Figure 1; '' skips it")
    parser.add_argument("--out", default="docs/figures", help="folder of the PNGs")
    args = parser.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    written = [table1_bars(args.benchmark, args.out), severity_lines(args.benchmark, args.out)]
    written += transfer_matrices(args.benchmark, args.out)
    if args.run:
        written.append(cam_grid(args.run, args.out))
    for path in written:
        print(f"{path} ({os.path.getsize(path) // 1024} KB)")


if __name__ == "__main__":
    main()
