"""Throughput of the native corruptions against the imagecorruptions reference.

    python scripts/bench_corruptions.py                  # 32 px and 224 px, all 19, Markdown table
    python scripts/bench_corruptions.py --write docs/results/corruptions.md

For each corruption and image size it reports images/s of the reference backend (one image
at a time through imagecorruptions, ImageNet parameters: the only ones it has) and of the
native ops with the same ImageNet parameters (tf.function, one severity per batch), their
ratio, and at 32 px also native with the CIFAR parameters. Both sides corrupt the same images
(128 at 32 px, 32 at 224 px), after a warm-up, and keep the best of `--repeats` runs per
severity (the steady state: on a shared machine the other runs carry other processes' load).
Each number averages severities 1-5. The summary rows give, over the 15 benchmark corruptions, the mean and geometric mean
of the ratios and the ratio of the whole suite's time per image.
"""

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from ar2_tf.quiet import quiet_start  # noqa: E402

quiet_start()  # TensorFlow's start-up noise off, as the commands do

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from readme_tables import SHARED, write_into  # noqa: E402

from ar2_tf.corruptions import ALL_CORRUPTIONS, BENCHMARK_CORRUPTIONS, corrupt  # noqa: E402

SEED = (1, 2)  # a plain tuple: converted inside each traced function


def images(size: int, count: int, path: str) -> np.ndarray:
    """Real CIFAR-10 test images resized to size x size (random smooth images if `path` is missing)."""
    try:
        x = np.load(path)["x_test"][:count]
    except OSError:
        x = np.random.default_rng(0).integers(0, 256, (count, 8, 8, 3)).astype(np.uint8)
    x = np.resize(x, (count,) + x.shape[1:])
    return tf.cast(tf.clip_by_value(tf.round(tf.image.resize(x, (size, size), "bicubic")), 0, 255), tf.uint8)


def native_seconds_per_image(x, name: str, params: str, repeats: int) -> float:
    """Mean over severities 1-5 of the best-of-`repeats` time per image of a compiled call."""
    times = []
    for severity in range(1, 6):
        fn = tf.function(lambda im, s=severity: corrupt(im, name, s, SEED, params=params))
        fn(x).numpy()  # trace and warm up
        best = float("inf")
        for _ in range(repeats):
            start = time.perf_counter()
            fn(x).numpy()
            best = min(best, time.perf_counter() - start)
        times.append(best / int(x.shape[0]))
    return float(np.mean(times))


def reference_seconds_per_image(x, name: str, repeats: int) -> float:
    """Mean over severities 1-5 of the best-of-`repeats` time per image of the reference backend
    on the same images (after one warm-up): timed exactly like the native side."""
    corrupt(x[:1], name, 1, SEED, params="imagenet", backend="reference")  # numba compiles glass blur once
    times = []
    for severity in range(1, 6):
        best = float("inf")
        for _ in range(repeats):
            start = time.perf_counter()
            corrupt(x, name, severity, SEED, params="imagenet", backend="reference").numpy()
            best = min(best, time.perf_counter() - start)
        times.append(best / int(x.shape[0]))
    return float(np.mean(times))


def run(names=ALL_CORRUPTIONS, sizes=(32, 224), batch=None, repeats=3,
        data="../shared/data/cifar10/cifar10_exact_official_subset.npz"):
    """Returns {(name, size): {"native": s, "reference": s, "native_cifar": s}} seconds per image."""
    batch = batch or {32: 128, 224: 32}
    results = {}
    for size in sizes:
        x = images(size, batch[size], data)
        for name in names:
            row = {"native": native_seconds_per_image(x, name, "imagenet", repeats),
                   "reference": reference_seconds_per_image(x, name, repeats)}
            if size == 32:
                row["native_cifar"] = native_seconds_per_image(x, name, "cifar", repeats)
            results[(name, size)] = row
            print(f"# {name} {size}px: " + ", ".join(f"{k} {1 / v:.0f} img/s" for k, v in row.items()), flush=True)
    return results


def summary(results, size: int):
    """(mean ratio, geometric mean ratio, suite ratio) over the 15 benchmark corruptions at `size`."""
    rows = [results[(n, size)] for n in BENCHMARK_CORRUPTIONS if (n, size) in results]
    ratios = np.array([r["reference"] / r["native"] for r in rows])
    suite = sum(r["reference"] for r in rows) / sum(r["native"] for r in rows)
    return float(ratios.mean()), float(np.exp(np.log(ratios).mean())), float(suite)


def table(results, sizes=(32, 224)) -> str:
    head = "| corruption |"
    rule = "| --- |"
    for size in sizes:
        head += f" {size} px native img/s | reference img/s | ratio |"
        rule += " --- | --- | --- |"
        if size == 32:
            head += " native CIFAR params img/s |"
            rule += " --- |"
    lines = [head, rule]
    names = [n for n in ALL_CORRUPTIONS if any((n, s) in results for s in sizes)]
    for name in names:
        line = f"| {name} |"
        for size in sizes:
            r = results.get((name, size))
            if r is None:
                line += " | | |" + (" |" if size == 32 else "")
                continue
            line += f" {1 / r['native']:,.0f} | {1 / r['reference']:,.1f} | {r['reference'] / r['native']:.1f}x |"
            if size == 32:
                line += f" {1 / r['native_cifar']:,.0f} |"
        lines.append(line)
    for label, k in (("mean ratio (15)", 0), ("geometric mean ratio (15)", 1), ("suite time ratio (15)", 2)):
        line = f"| **{label}** |"
        for size in sizes:
            line += f" | | **{summary(results, size)[k]:.1f}x** |" + (" |" if size == 32 else "")
        lines.append(line)
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--names", default=",".join(ALL_CORRUPTIONS), help="comma-separated corruptions")
    parser.add_argument("--sizes", default="32,224", help="comma-separated image sizes")
    parser.add_argument("--repeats", type=int, default=3, help="timed native runs per severity (best is kept)")
    parser.add_argument("--data", default=os.path.join(SHARED, "data", "cifar10", "cifar10_exact_official_subset.npz"))
    parser.add_argument("--write", metavar="MARKDOWN", help="also put the table between bench markers in this file")
    args = parser.parse_args(argv)
    sizes = tuple(int(s) for s in args.sizes.split(","))
    results = run(tuple(args.names.split(",")), sizes, repeats=args.repeats, data=args.data)
    text = table(results, sizes)
    print(text)
    if args.write:
        write_into(args.write, text)


if __name__ == "__main__":
    main()
