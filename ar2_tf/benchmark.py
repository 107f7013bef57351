"""`python -m ar2_tf.benchmark`: every repair method from one pretrained model, trained and measured alike.

Methods (`--methods`, default all):
    vanilla          the pretrained model itself (always evaluated: it is the baseline)
    finetune         fine-tuning alone, T·M epochs: as many fine-tuning phases as AR2 (the paper's ablation)
    finetune_epochs  fine-tuning alone, T·(N+M) epochs: as many epochs as AR2
    augmix           AugMix + JSD loss, T·(N+M) epochs, one model for every corruption
    ar2              AR2, one model per corruption in --corruptions
    unified          AR2 on all 15 corruptions (one drawn per batch), one model

Every run goes through `training.run_repair` into OUT/runs/<method>_<corruption>
(resumable: a finished run is reused, an interrupted one resumes); then every
model is evaluated on the same corrupted test sets (`ar2_tf.evaluation_suite`,
all 15 corruptions at severities 1-5 unless --eval-corruptions/--severities say
otherwise) and OUT receives the tables (`ar2_tf.benchmark_report`), report.md
and benchmark.json (command, config, package versions, seeds, wall times).

Every flag of `python -m ar2_tf.train` except --method, --corruption and --out
is passed through (data, model, schedule, learning rates, seed).

Example (the committed CIFAR-10 report, see README.md, "The benchmark"):
    python -m ar2_tf.benchmark --dataset cifar10 --model ../shared/models/cifar10_resnet20v1.h5 \\
        --data-dir ../shared/data/cifar10/cifar10_jpeg_bytes_official_order.npz --train-size 5000 \\
        --eval-data-dir ../shared/data/cifar10/cifar10_exact_official_subset.npz \\
        --corruptions gaussian_noise,defocus_blur,fog,contrast,jpeg_compression -T 4 -N 1 -M 1 \\
        --out results/cifar10_benchmark
"""

import argparse
import dataclasses
import json
import os
import shlex
import subprocess
import sys
import time

from ar2_tf import benchmark_report, corrupted_sets, training
from ar2_tf.cli import parse_int_list, run_main
from ar2_tf.config import to_dict
from ar2_tf.corruptions import BENCHMARK_CORRUPTIONS, check_corruption
from ar2_tf.data import UNIFIED
from ar2_tf.errors import UserError
from ar2_tf.runs import environment, write_json_atomic
from ar2_tf.tables import to_markdown

METHODS = ("vanilla", "finetune", "finetune_epochs", "augmix", "ar2", "unified")


def epochs_of(method, repair) -> int:
    """Training steps (epochs, or batches with step_unit "batch") each method gets."""
    if method == "vanilla":
        return 0
    if method == "finetune":
        return repair.iterations * repair.finetune_steps
    return repair.iterations * (repair.refine_steps + repair.finetune_steps)


def run_config(base, method, corruption):
    """The `TrainConfig` of one benchmark run."""
    if method == "finetune_epochs":  # fine-tuning alone, AR2's T·(N+M) epochs
        repair = dataclasses.replace(base.repair, finetune_steps=base.repair.refine_steps + base.repair.finetune_steps)
        return dataclasses.replace(base, method="finetune", corruption=corruption, repair=repair)
    trainer = {"unified": "ar2"}.get(method, method)
    return dataclasses.replace(base, method=trainer, corruption=corruption)


def plan_runs(base, methods, corruptions) -> list:
    """One dict per training run: key, method, corruption ("all" for a single model), config."""
    runs = []
    for method in METHODS:
        if method not in methods or method == "vanilla":
            continue
        for corruption in corruptions if method in benchmark_report.PER_CORRUPTION else (UNIFIED,):
            runs.append({"key": f"{method}_{corruption}", "method": method, "corruption": corruption,
                         "config": run_config(base, method, corruption)})
    return runs


def method_labels(repair) -> dict:
    unit = "" if repair.step_unit == "epoch" else " batches"
    names = {"vanilla": "vanilla", "finetune": "fine-tune (same phases)", "finetune_epochs": "fine-tune (same epochs)",
             "augmix": "AugMix", "ar2": "AR2", "unified": "AR2 unified (all 15)"}
    return {m: {"label": names[m], "epochs": f"{epochs_of(m, repair)}{unit}"} for m in METHODS}


def _git_state():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10)
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "ar2_tf"], cwd=root, capture_output=True,
                               text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    if commit.returncode:
        return None
    return {"commit": commit.stdout.strip(), "ar2_tf_modified": dirty.stdout.split("\n") if dirty.stdout else []}


def _pretrained_model(base, out, verbose):
    """The pretrained model file every method starts from (pre-trained once into OUT if needed)."""
    if os.path.isfile(base.model):
        return base
    from ar2_tf.datasets import load_dataset

    source = load_dataset(base.dataset, base.data_dir, base.train_size, base.test_size, base.image_size, base.seed)
    training.prepare_classifier(base, source, out, verbose)
    return dataclasses.replace(base, model=os.path.join(out, "pretrained.keras"), pretrain_epochs=0)


def run_benchmark(base, *, methods=METHODS, corruptions, out, evaluated=None, severities=(1, 2, 3, 4, 5),
                  cache_dir=corrupted_sets.DEFAULT_CACHE_DIR, strategy="auto", command=None, verbose=1) -> dict:
    """Trains every planned run (reusing finished ones), evaluates all models alike, writes the report.

    Args:
        base: the `TrainConfig` shared by all runs (its method and corruption are replaced per run).
        methods: names from `METHODS`.
        corruptions: the corruptions of the per-corruption methods (finetune*, ar2).
        out: the benchmark folder; runs go to OUT/runs, the evaluation to OUT/evaluation.
        evaluated: corruptions of the test sets (default: the 15 benchmark corruptions).
        cache_dir: cache of generated corrupted test sets (None: memory only).
    """
    from ar2_tf.evaluation_suite import EvaluationSetup, run_evaluation

    unknown = sorted(set(methods) - set(METHODS))
    if unknown:
        raise UserError(f"unknown method(s) {', '.join(unknown)}; choose from {', '.join(METHODS)}.")
    corruptions = tuple(check_corruption(c) for c in corruptions)
    evaluated = tuple(check_corruption(c) for c in evaluated or BENCHMARK_CORRUPTIONS)
    missing = [c for c in corruptions if c not in evaluated]
    if missing:
        raise UserError(f"repaired-for corruption(s) {', '.join(missing)} are not among the evaluated ones.")
    os.makedirs(out, exist_ok=True)
    started = time.time()
    base = _pretrained_model(base, out, verbose)
    runs = plan_runs(base, methods, corruptions)
    for run in runs:
        training.validate(run["config"])
    timings_path = os.path.join(out, "timings.json")
    timings = {}
    if os.path.exists(timings_path):
        with open(timings_path) as file:
            timings = json.load(file)
    for index, run in enumerate(runs, 1):
        run["dir"] = os.path.abspath(os.path.join(out, "runs", run["key"]))
        finished = os.path.exists(os.path.join(run["dir"], "report.json"))
        print(f"\n[{index}/{len(runs)}] {run['key']}" + (" (finished, reused)" if finished else ""), flush=True)
        begin = time.time()
        training.run_repair(run["config"], run["dir"], strategy=strategy, verbose=verbose)
        if not finished:
            timings[run["key"]] = round(time.time() - begin, 1)
            write_json_atomic(timings_path, timings)
    begin = time.time()
    setup = EvaluationSetup(dataset=base.dataset, data_dir=base.eval_data_dir or base.data_dir, corruptions=evaluated,
                            severities=tuple(severities), test_size=base.test_size, image_size=base.image_size,
                            params=base.params, backend=base.corruption_backend, seed=base.seed)
    results = run_evaluation([run["dir"] for run in runs], setup, baseline=base.model,
                             preprocessing=training.model_preprocessing(base), out=os.path.join(out, "evaluation"),
                             cache_dir=cache_dir, verbose=verbose)
    evaluation_seconds = round(time.time() - begin, 1)
    by_source = {os.path.abspath(entry["source"]): entry for entry in results["models"].values()}
    entries = {run["key"]: by_source[os.path.join(run["dir"], "model.keras")] for run in runs}
    entries["vanilla"] = results["models"][results["baseline"]]
    table_runs = [{"key": "vanilla", "method": "vanilla", "corruption": UNIFIED}] + runs
    labels = method_labels(base.repair)
    built = benchmark_report.write_tables(out, table_runs, entries, corruptions, evaluated, labels, "vanilla")
    transfers = benchmark_report.write_transfers(out, table_runs, entries, "vanilla", evaluated)
    record = {
        "command": command, "config": to_dict(base), "environment": environment(), "git": _git_state(),
        "corruption_code_version": corrupted_sets.corruption_code_version(),
        "seeds": {"seed": base.seed, "meaning": "data order, training corruption noise (seed + epoch, batch), "
                  "train/test subsets, test corruption noise (seed + 1000·severity, batch)"},
        "methods": list(methods), "corruptions": list(corruptions), "evaluated": list(evaluated),
        "severities": list(severities), "labels": labels, "evaluation_setup": results["setup"],
        "runs": [{key: run[key] for key in ("key", "method", "corruption", "dir")}
                 | {"epochs": epochs_of(run["method"], base.repair), "config": to_dict(run["config"])} for run in runs],
        "wall_seconds": {"train": timings, "train_total": round(sum(timings.get(r["key"], 0) for r in runs), 1),
                         "evaluation_this_call": evaluation_seconds,
                         "this_call": round(time.time() - started, 1)},
        "tables": {name: {"title": t, "header": h, "rows": r} for name, (t, h, r) in built.items()},
        "transfer": {method: info["counts"] for method, info in transfers.items()},
    }
    write_json_atomic(os.path.join(out, "benchmark.json"), record)
    benchmark_report.write_markdown(os.path.join(out, "report.md"), record, built)
    return record


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m ar2_tf.benchmark", description=__doc__.split("\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__,
                                     allow_abbrev=False)
    parser.add_argument("--methods", default=",".join(METHODS), help="comma-separated, from: " + ", ".join(METHODS))
    parser.add_argument("--corruptions", default="all", help="repaired-for corruptions of finetune*/ar2: 'all' or a "
                                                             "comma-separated list")
    parser.add_argument("--eval-corruptions", default="all", help="evaluated corruptions (default: all 15)")
    parser.add_argument("--severities", default="1-5", help="evaluated severities, e.g. 1-5")
    parser.add_argument("--cache-dir", help="cache of generated corrupted test sets (default ~/.cache/ar2_tf/"
                                            "corrupted_sets); 'none' keeps them in memory")
    parser.add_argument("--out", required=True, help="benchmark folder (runs/, evaluation/, tables, report.md)")
    return parser


def main(argv=None):
    from ar2_tf import train

    argv = sys.argv[1:] if argv is None else list(argv)
    args, rest = build_parser().parse_known_args(argv)
    clashing = [token for token in rest if token.split("=")[0] in ("--method", "--corruption", "--out")]
    if clashing:
        raise UserError(f"{clashing[0].split('=')[0]} is a python -m ar2_tf.train flag; the benchmark takes "
                        "--methods, --corruptions and one --out.")
    train_args = train.build_parser().parse_args(rest)
    base = train.config_from_args(train_args)
    cache_dir = corrupted_sets.DEFAULT_CACHE_DIR if args.cache_dir is None else (
        None if args.cache_dir.lower() == "none" else args.cache_dir)
    from ar2_tf.evaluation_suite import parse_corruptions

    record = run_benchmark(base, methods=tuple(m.strip() for m in args.methods.split(",") if m.strip()),
                           corruptions=parse_corruptions(args.corruptions),
                           evaluated=parse_corruptions(args.eval_corruptions),
                           severities=parse_int_list(args.severities, "severities"), out=args.out,
                           cache_dir=cache_dir, strategy=train_args.strategy,
                           command="python -m ar2_tf.benchmark " + shlex.join(argv), verbose=train_args.verbose)
    print("\n" + to_markdown(*[record["tables"]["table1_repaired"][k] for k in ("title", "header", "rows")]))
    print(f"report: {os.path.join(args.out, 'report.md')} (wall time this call: "
          f"{record['wall_seconds']['this_call']:.0f} s)")


if __name__ == "__main__":
    sys.exit(run_main(main))
