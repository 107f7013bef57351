"""Fidelity tables of the native corruptions, as on the results page docs/results/corruptions.md.

    python scripts/corruption_fidelity.py                      # both tables (minutes on 2 cores)
    python scripts/corruption_fidelity.py --write docs/results/corruptions.md  # refresh the tables of the results page

The measurements are `ar2_tf.evaluation.corruption_fidelity`'s; this script only formats them.
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import numpy as np  # noqa: E402
from readme_tables import SHARED, write_into  # noqa: E402

from ar2_tf.corruptions import ALL_CORRUPTIONS, BENCHMARK_CORRUPTIONS  # noqa: E402
from ar2_tf.evaluation import corruption_fidelity as fidelity  # noqa: E402


def comparison_table(rows) -> str:
    """One row per (corruption, severity)."""
    lines = ["| corruption | sev | MAD | mean native / ref | std native / ref | PSNR native / ref |",
             "| --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        lines.append(f"| {r.name} | {r.severity} | {r.mad:.2f} | {r.mean[0]:.1f} / {r.mean[1]:.1f} "
                     f"| {r.std[0]:.1f} / {r.std[1]:.1f} | {r.psnr[0]:.2f} / {r.psnr[1]:.2f} |")
    return "\n".join(lines)


def summary_table(rows) -> str:
    """One row per corruption: the largest differences over its severities."""
    lines = ["| corruption | kind | max MAD | max abs. diff. mean | max abs. diff. std | max abs. diff. PSNR (dB) |",
             "| --- | --- | --- | --- | --- | --- |"]
    for name in dict.fromkeys(r.name for r in rows):
        mine = [r for r in rows if r.name == name]
        kind = "deterministic" if name in fidelity.DETERMINISTIC else "random"
        lines.append(f"| {name} | {kind} | {max(r.mad for r in mine):.2f} "
                     f"| {max(abs(r.mean[0] - r.mean[1]) for r in mine):.2f} "
                     f"| {max(abs(r.std[0] - r.std[1]) for r in mine):.2f} "
                     f"| {max(abs(r.psnr[0] - r.psnr[1]) for r in mine):.2f} |")
    return "\n".join(lines)


def errors_table(errors) -> str:
    lines = ["| corruption | native error % | reference error % (FIELD-NOTES) | difference |",
             "| --- | --- | --- | --- |"]
    for name, err in errors.items():
        ref = fidelity.REFERENCE_RESNET20_ERRORS[name]
        lines.append(f"| {name} | {err:.1f} | {ref:.1f} | {err - ref:+.1f} |")
    mean = float(np.mean([errors[n] for n in BENCHMARK_CORRUPTIONS]))
    ref = fidelity.REFERENCE_RESNET20_MEAN
    lines.append(f"| **mean of 15** | **{mean:.1f}** | **{ref:.1f}** | **{mean - ref:+.1f}** |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=os.path.join(SHARED, "data", "cifar10", "cifar10_exact_official_subset.npz"))
    parser.add_argument("--model", default=os.path.join(SHARED, "models", "cifar10_resnet20v1.h5"))
    parser.add_argument("--images", type=int, default=16, help="224 px images for the reference comparison "
                        "(glass blur uses at most 4: its reference takes about a second per image)")
    parser.add_argument("--skip-model", action="store_true", help="only the reference comparison")
    parser.add_argument("--skip-reference", action="store_true", help="only the ResNet-20 check")
    parser.add_argument("--details", action="store_true", help="one row per severity")
    parser.add_argument("--write", metavar="MARKDOWN", help="also put the tables between the fidelity / resnet20 "
                        "markers of this file")
    args = parser.parse_args(argv)
    if not args.skip_reference:
        x = fidelity.upsampled_cifar(args.data, args.images)
        rows = fidelity.compare_with_reference(x, [n for n in ALL_CORRUPTIONS if n != "glass_blur"])
        rows += fidelity.compare_with_reference(x[:4], ["glass_blur"])
        rows.sort(key=lambda r: ALL_CORRUPTIONS.index(r.name))
        text = comparison_table(rows) if args.details else summary_table(rows)
        print(text)
        if args.write:
            write_into(args.write, text, "fidelity")
    if not args.skip_model:
        import keras

        data = np.load(args.data)
        model = keras.saving.load_model(args.model, compile=False)
        text = errors_table(fidelity.model_errors(model, data["x_test"], data["y_test"].reshape(-1)))
        print(text)
        if args.write:
            write_into(args.write, text, "resnet20")


if __name__ == "__main__":
    main()
