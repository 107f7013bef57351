"""Learning-rate sweep of AR2 on real CIFAR-10: the measurement behind the default learning rates.

    python scripts/lr_sweep.py --out results/lr_sweep                       # all settings, resumable
    python scripts/lr_sweep.py --out results/lr_sweep --seeds 0 --lrs 0.01   # a part of it
    python scripts/lr_sweep.py --out results/lr_sweep --write docs/results/learning-rates.md  # the per-seed table of the results page

Every run is `python -m ar2_tf.train` on the shared ResNet-20 with 5,000 of the 5,438 exact-pixel
CIFAR-10 training images (10% of them carved off for validation) and the 1,017 exact-pixel test
images, T=4 iterations of N=1 refinement + M=1 fine-tuning epochs, both phases at the same
learning rate. Finished runs are reused, so an interrupted sweep continues where it stopped.
It writes OUT/sweep.json and OUT/README.md: per corruption and learning rate, the mean over
seeds of the kept model's test errors and of its validation errors. The recommended setting is
the one with the lowest corrupted *validation* error whose clean validation error rose by at most
1 point (the test images are never used to choose).
"""

import argparse
import json
import os
import subprocess
import sys

import numpy as np
from readme_tables import SHARED, write_into

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
MODEL = os.path.join(SHARED, "models", "cifar10_resnet20v1.h5")
DATA = os.path.join(SHARED, "data", "cifar10", "cifar10_exact_official_subset.npz")
FLAGS = ["--dataset", "cifar10", "--model", MODEL, "--data-dir", DATA, "--train-size", "5000", "-T", "4", "-N", "1",
         "-M", "1", "--verbose", "2"]


def run_folder(out, corruption, lr, seed):
    return os.path.join(out, "runs", f"{corruption}_lr{lr}_seed{seed}")


def train(out, corruption, lr, seed):
    folder = run_folder(out, corruption, lr, seed)
    command = [sys.executable, "-m", "ar2_tf.train", *FLAGS, "--corruption", corruption, "--refine-lr", lr,
               "--finetune-lr", lr, "--seed", str(seed), "--out", folder]
    print(" ".join(command), flush=True)
    subprocess.run(command, check=True, cwd=ROOT)
    with open(os.path.join(folder, "report.json")) as file:
        return json.load(file)


def summarize(report) -> dict:
    validation = report["validation"]
    kept = next((p for p in validation["phases"] if p["epoch"] == validation["kept"]), None)
    return {"test_clean": report["after"]["clean"], "test_corrupted": report["after"]["mean_corrupted"],
            "test_clean_before": report["before"]["clean"], "test_corrupted_before": report["before"]["mean_corrupted"],
            "val_clean": (kept or validation["baseline"])["clean"],
            "val_corrupted": (kept or validation["baseline"])["corrupted"],
            "val_clean_before": validation["baseline"]["clean"], "kept": validation["kept"]}


def table(results, corruptions, lrs) -> tuple:
    """Markdown rows (means over seeds) and the recommended learning rate per corruption."""
    lines = ["| corruption | lr (both phases) | seeds | test clean err (before → after) | test corrupted err, mean "
             "of s1-5 (before → after) | val clean err (before → kept) | val corrupted err s3 (kept) | kept epoch per "
             "seed |", "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    best = {}
    for corruption in corruptions:
        for lr in lrs:
            rows = results.get(corruption, {}).get(lr, [])
            if not rows:
                continue
            mean = {key: float(np.mean([r[key] for r in rows])) for key in rows[0] if key != "kept"}
            kept = ", ".join(str(r["kept"] + 1) if isinstance(r["kept"], int) else "pretrained" for r in rows)
            lines.append(f"| {corruption} | {lr} | {len(rows)} | {mean['test_clean_before']:.1f} → "
                         f"{mean['test_clean']:.1f} | {mean['test_corrupted_before']:.1f} → {mean['test_corrupted']:.1f} "
                         f"| {mean['val_clean_before']:.1f} → {mean['val_clean']:.1f} | {mean['val_corrupted']:.1f} "
                         f"| {kept} |")
            if mean["val_clean"] - mean["val_clean_before"] <= 1.0 and (
                    corruption not in best or mean["val_corrupted"] < best[corruption][1]):
                best[corruption] = (lr, mean["val_corrupted"])
    return lines, {c: lr for c, (lr, _) in best.items()}


def per_seed_table(results) -> str:
    """The results page's table: every seed's kept-model numbers side by side (from OUT/sweep.json)."""
    lines = ["| corruption | lr | seeds | test clean err (before → after), per seed | test corrupted err, mean of "
             "s1-5 (before → after), per seed | val clean err (before → kept), per seed | kept epoch, per seed |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for corruption, by_lr in results.items():
        for lr, rows in by_lr.items():
            def each(key):
                return ", ".join(f"{r[key]:.1f}" for r in rows)
            kept = ", ".join(str(r["kept"] + 1) if isinstance(r["kept"], int) else "pretrained" for r in rows)
            validation = "; ".join(f"{r['val_clean_before']:.1f} → {r['val_clean']:.1f}" for r in rows)
            lines.append(f"| {corruption} | {lr} | {len(rows)} | {rows[0]['test_clean_before']:.1f} → "
                         f"{each('test_clean')} | {each('test_corrupted_before')} → {each('test_corrupted')} | "
                         f"{validation} | {kept} |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--corruptions", default="gaussian_noise,fog")
    parser.add_argument("--lrs", default="0.01,0.003,0.001,0.0003")
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--write", help="write the per-seed table of OUT/sweep.json into this Markdown page (no training)")
    args = parser.parse_args(argv)
    if args.write:
        with open(os.path.join(args.out, "sweep.json")) as file:
            write_into(args.write, per_seed_table(json.load(file)["results"]), marker="lr_sweep")
        return
    corruptions, lrs = args.corruptions.split(","), args.lrs.split(",")
    results = {}
    for seed in (int(s) for s in args.seeds.split(",")):
        for corruption in corruptions:
            for lr in lrs:
                results.setdefault(corruption, {}).setdefault(lr, []).append(
                    summarize(train(args.out, corruption, lr, seed)))
                lines, best = table(results, corruptions, lrs)
                with open(os.path.join(args.out, "sweep.json"), "w") as file:
                    json.dump({"flags": FLAGS, "results": results, "recommended": best}, file, indent=2)
                with open(os.path.join(args.out, "README.md"), "w") as file:
                    file.write("# AR2 learning-rate sweep (shared ResNet-20, exact-pixel CIFAR-10)\n\n"
                               "Made by `python scripts/lr_sweep.py --out results/lr_sweep` (see its docstring).\n\n"
                               + "\n".join(lines) + "\n\nRecommended (lowest corrupted validation error with the "
                               f"clean validation error within 1 point): {best}\n")
    print("\n".join(table(results, corruptions, lrs)[0]))


if __name__ == "__main__":
    main()
