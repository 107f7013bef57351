"""The clean-accuracy guard on models other people trained: does a repaired model keep its promise on test images?

    python scripts/zoo.py                                  # all models, resumable; writes results/zoo/
    python scripts/zoo.py --models resnet8 --corruptions fog
    python scripts/zoo.py --write docs/results/guard.md     # the table, between the page's zoo markers

Each model of ../shared/models/zoo/ and the shared ResNet-20 is repaired with AR2 and with fine-tuning given the
same epochs, for gaussian_noise and for fog, with the defaults a user gets: 2,000 exact-pixel CIFAR-10 training
images, T=2 iterations of one refinement and one fine-tuning epoch, `--max-clean-drop 1`, and validation on a
fixed half of the 1,017 exact-pixel test images (the other half tests; `ar2_tf.data.holdout`). The table puts,
side by side, the clean-error rise the guard estimated on its validation images and the rise measured on test
images it never saw, both paired image by image with their standard errors (`ar2_tf.evaluation.clean_rise`),
and the margin sampling error alone allows between the two: 1.96 sqrt(SE_val^2 + SE_test^2). A run keeps its
promise when its test-set rise is at most the limit plus that margin. Finished runs are reused.
"""

import argparse
import csv
import json
import os
import sys

from readme_tables import SHARED, write_into

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path.insert(0, ROOT)

from ar2_tf.evaluation.clean_rise import sampling_margin  # noqa: E402
from ar2_tf.runs.methods import BENCHMARK_ENTRIES  # noqa: E402

DATA = os.path.join(SHARED, "data", "cifar10", "cifar10_exact_official_subset.npz")
MODELS = {  # name: (file under ../shared/models, its preprocessing spec: the input convention its README gives)
    "resnet20": ("cifar10_resnet20v1.h5", "unit"),
    "preact_resnet32": ("zoo/preact_resnet32_meanstd.h5", "meanstd:125.307,122.95,113.865:62.9932,62.0887,66.7048"),
    "resnet8": ("zoo/resnet8_raw255.h5", "none"),
    "smallcnn": ("zoo/smallcnn_logits_unit.keras", "unit"),
}
METHODS = ("ar2", "finetune_epochs")
CORRUPTIONS = ("gaussian_noise", "fog")
FIELDS = {"dataset": "cifar10", "data_dir": DATA, "train_size": 2000, "max_clean_drop": 1.0}
REPAIR_FIELDS = {"iterations": 2, "refine_steps": 1, "finetune_steps": 1}


def config_of(model, method, corruption):
    from ar2_tf.runs.config import resolve

    path, preprocessing = MODELS[model]
    base = resolve("cifar10", None, {}, {**FIELDS, "model": os.path.join(SHARED, "models", path),
                                         "preprocessing": preprocessing, "corruption": corruption}, REPAIR_FIELDS)
    return BENCHMARK_ENTRIES[method].config(base, corruption)


def row(model, method, corruption, report) -> dict:
    """One table row from a finished run's report."""
    validation, test = report["validation"], report["clean_rise"]
    kept = next((p for p in validation["phases"] if p["epoch"] == validation["kept"]), None)
    val = kept["clean_rise"] if kept else {"rise": 0.0, "se": 0.0}  # the pretrained weights: no rise
    limit = report["config"]["max_clean_drop"]
    margin = sampling_margin(val["se"], test["se"])
    return {"model": model, "method": method, "corruption": corruption,
            "kept": "pretrained" if kept is None else f"{kept['epoch'] + 1}/{len(validation['phases'])} {kept['phase']}",
            "val_images": report["val_size"], "test_images": test["images"],
            "val_rise": val["rise"], "val_se": val["se"],
            "clean_before": report["before"]["clean"], "clean_after": report["after"]["clean"],
            "test_rise": test["rise"], "test_se": test["se"], "limit": limit, "margin": margin,
            "kept_promise": test["rise"] <= limit + margin,
            "ce_before": report["before"]["mean_corrupted"], "ce_after": report["after"]["mean_corrupted"]}


def markdown(rows, command) -> str:
    lines = [
        "# The clean-accuracy guard on models other people trained", "", "Command:", "", "```", command, "```", "",
        "Clean error and CE (mean error over severities 1-5, %) on exact-pixel CIFAR-10 test images the guard never "
        "saw. *val rise*: the clean-error rise the guard estimated on its validation images for the phase it kept "
        "(± one standard error, paired); *test rise*: the rise measured on the test images (± SE); *margin*: "
        "1.96 √(SE_val² + SE_test²), what sampling error alone allows between the two; *kept*: whether the test "
        "rise is within the limit (1 point) plus the margin.", "",
        "| model | method | repaired for | kept phase | val rise | test clean before → after | test rise | margin "
        "| kept | target CE before → after |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        lines.append(
            f"| {r['model']} | {BENCHMARK_ENTRIES[r['method']].label} | {r['corruption']} | {r['kept']} | "
            f"{r['val_rise']:+.2f} ± {r['val_se']:.2f} | {r['clean_before']:.2f} → {r['clean_after']:.2f} | "
            f"{r['test_rise']:+.2f} ± {r['test_se']:.2f} | {r['margin']:.2f} | {'yes' if r['kept_promise'] else 'NO'} "
            f"| {r['ce_before']:.2f} → {r['ce_after']:.2f} |")
    kept = sum(r["kept_promise"] for r in rows)
    reduced = sum(r["ce_after"] < r["ce_before"] for r in rows)
    unrepaired = sum(r["kept"] == "pretrained" for r in rows)
    over = sum(r["test_rise"] > r["limit"] for r in rows)
    repaired = [r for r in rows if r["kept"] != "pretrained"]
    gap = sum(r["test_rise"] - r["val_rise"] for r in repaired) / max(len(repaired), 1)
    lines += ["", f"{kept} of {len(rows)} runs kept the promise; the test rise exceeded the limit itself in {over}; "
                  f"the target CE fell in {reduced}; {unrepaired} kept the pretrained weights (no phase within the "
                  f"limit on validation). Over the {len(repaired)} runs that kept a trained phase, the test rise "
                  f"minus the validation estimate averages {gap:+.2f} points. Validation: {rows[0]['val_images']} "
                  f"images, test: {rows[0]['test_images']}, per run."]
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=os.path.join(ROOT, "results", "zoo"))
    parser.add_argument("--models", default=",".join(MODELS), help=f"comma-separated: {', '.join(MODELS)}")
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--corruptions", default=",".join(CORRUPTIONS))
    parser.add_argument("--write", help="also write the table between this file's zoo markers (e.g. docs/results/guard.md)")
    args = parser.parse_args(argv)
    from ar2_tf.runs.repair_run import run_repair

    rows = []
    for model in args.models.split(","):
        for corruption in args.corruptions.split(","):
            for method in args.methods.split(","):
                folder = os.path.join(args.out, "runs", f"{model}_{method}_{corruption}")
                print(f"\n{model} {method} {corruption} -> {folder}", flush=True)
                report = run_repair(config_of(model, method, corruption), folder, verbose=0)
                rows.append(row(model, method, corruption, report))
                print(json.dumps(rows[-1]), flush=True)
    given = [a for a in (argv if argv is not None else sys.argv[1:])]
    if "--write" in given:  # where the table also goes does not change the measurement
        del given[given.index("--write"):given.index("--write") + 2]
    command = "python scripts/zoo.py" + "".join(f" {a}" for a in given)
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "zoo.json"), "w") as file:
        json.dump({"command": command, "rows": rows}, file, indent=1)
    with open(os.path.join(args.out, "zoo.csv"), "w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    with open(os.path.join(args.out, "zoo.md"), "w") as file:
        file.write(markdown(rows, command))
    print(markdown(rows, command))
    if args.write:
        table = markdown(rows, command).split("\n", 8)[8].rstrip("\n")  # without the title and command block
        write_into(args.write, f"```bash\n{command}\n```\n\n{table}", marker="zoo")


if __name__ == "__main__":
    main()
