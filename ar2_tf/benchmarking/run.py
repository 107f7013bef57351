"""Every repair method from one pretrained model, trained and measured alike (`python -m ar2_tf.benchmark`).

`run_benchmark` trains each method's runs into OUT/runs/<method>_<corruption>
(resumable: a finished run is reused, an interrupted one resumes), evaluates
every model on the same corrupted test sets (`ar2_tf.evaluation.suite`) and
writes the tables (`ar2_tf.benchmarking.report`), report.md and benchmark.json
(command, config, package versions, seeds, wall times). The methods are those
of the command's docstring (`ar2_tf/benchmark.py`). With "tent" among them,
TENT adapts the pretrained model and every trained per-corruption model
(`ar2_tf.benchmarking.adapted`) as they are evaluated.
"""

import dataclasses
import json
import os
import subprocess
import time

import ar2_tf
from ar2_tf.benchmarking import adapted
from ar2_tf.benchmarking import report as benchmark_report
from ar2_tf.choices import UNIFIED
from ar2_tf.corruptions import BENCHMARK_CORRUPTIONS, check_corruption
from ar2_tf.errors import UserError
from ar2_tf.evaluation import corrupted_sets
from ar2_tf.output_files import environment, write_json_atomic
from ar2_tf.runs import repair_run, run_folder
from ar2_tf.runs.config import TrainConfig, to_dict
from ar2_tf.runs.evaluated_runs import model_spec
from ar2_tf.runs.methods import BENCHMARK_ENTRIES, budget
from ar2_tf.runs.plan import plan_run
from ar2_tf.runs.run_folder import RunFolder

METHODS = tuple(BENCHMARK_ENTRIES)  # the `methods` choices, in table order
DEFAULT_SEED = TrainConfig.seed  # its runs keep plain keys (plan_runs)


def plan_runs(base, methods, corruptions, seeds=None) -> list:
    """One dict per training run: key, method (the benchmark entry), corruption ("all" for a single model),
    seed and config. With several `seeds` every run is planned once per seed. A run of the default seed keeps the
    plain key (`ar2_fog`), so a one-seed benchmark's runs are seed 0 of a later one with `seeds` (0, 1, 2); any other seed's
    key ends in `_seed<s>`."""
    seeds = tuple(seeds) if seeds else (base.seed,)
    runs = []
    for seed in seeds:
        suffix = "" if seed == DEFAULT_SEED else f"_seed{seed}"
        for key, entry in BENCHMARK_ENTRIES.items():
            if key not in methods or entry.method is None:
                continue
            for corruption in corruptions if entry.per_corruption else (UNIFIED,):
                runs.append({"key": f"{key}_{corruption}{suffix}", "method": key, "corruption": corruption,
                             "seed": seed, "config": entry.config(dataclasses.replace(base, seed=seed), corruption)})
    return runs


def method_labels(repair) -> dict:
    """{row: {"label": row name, "budget": '8 epochs'}} under the benchmark's AR2 settings: every entry's, then
    their models' under TENT ("ar2+tent": "AR2 + TENT")."""
    labels = {key: {"label": entry.label, "budget": budget(key, repair)} for key, entry in BENCHMARK_ENTRIES.items()}
    return labels | adapted.twin_labels(labels)


def _git_state():
    root = os.path.dirname(os.path.dirname(os.path.abspath(ar2_tf.__file__)))  # the checkout holding ar2_tf/
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10)
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "ar2_tf"], cwd=root, capture_output=True,
                               text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    if commit.returncode:
        return None
    return {"commit": commit.stdout.strip(), "ar2_tf_modified": dirty.stdout.split("\n") if dirty.stdout else []}


def _replaced(plan, **fields):
    """`plan` with config `fields` replaced that its check does not read (the seed, the pretrained model's file):
    its check stands; what it resolves from the model (the preprocessing) is resolved anew."""
    config = dataclasses.replace(plan.config, **fields)
    return dataclasses.replace(plan, config=config, model_file=os.path.exists(config.model))


def _pretrained_model(plan, out, verbose):
    """The plan with the pretrained model file every method starts from (pre-trained once into OUT if needed)."""
    config = plan.config
    if os.path.isfile(config.model):
        return plan
    from ar2_tf.data.sources import load_dataset

    source = load_dataset(config.dataset, config.data_dir, config.train_size, config.test_size, config.image_size,
                          config.seed)
    repair_run.prepare_classifier(plan, source, out, verbose)
    return _replaced(plan, model=os.path.join(out, "pretrained.keras"), pretrain_epochs=0)


def run_benchmark(base_plan, *, methods=METHODS, corruptions, out, evaluated=None, severities=(1, 2, 3, 4, 5),
                  cache_dir=None, strategy="auto", command=None, verbose=1, seeds=None) -> dict:
    """Trains every planned run (reusing finished ones), evaluates all models alike, writes the report.

    Args:
        base_plan: the plan of the `TrainConfig` shared by all runs (`ar2_tf.runs.plan.plan_run`, which checked
            it; each run replaces its method and corruption).
        methods: names from `METHODS`.
        corruptions: the corruptions of the per-corruption methods (finetune*, ar2).
        out: the benchmark folder; runs go to OUT/runs, the evaluation to OUT/evaluation.
        evaluated: corruptions of the test sets (default: the 15 benchmark corruptions).
        cache_dir: cache of generated corrupted test sets (opt-in; None: streamed, each set made once for all
            models: `ar2_tf.evaluation.suite.run_evaluation`).
        seeds: train every run once per seed (default: the base config's `seed` alone); the test sets are the first
            seed's for every model, and the tables give mean ± std (`ar2_tf.benchmarking.seed_statistics`).
    """
    from ar2_tf.evaluation.suite import EvaluationSetup, run_evaluation

    unknown = sorted(set(methods) - set(METHODS))
    if unknown:
        raise UserError(f"unknown method(s) {', '.join(unknown)}; choose from {', '.join(METHODS)}.")
    corruptions = tuple(check_corruption(c) for c in corruptions)
    evaluated = tuple(check_corruption(c) for c in evaluated or BENCHMARK_CORRUPTIONS)
    missing = [c for c in corruptions if c not in evaluated]
    if missing:
        raise UserError(f"repaired-for corruption(s) {', '.join(missing)} are not among the evaluated ones.")
    seeds = tuple(seeds) if seeds else (base_plan.config.seed,)
    if len(set(seeds)) != len(seeds):
        raise UserError(f"`seeds` lists a seed twice: {', '.join(map(str, seeds))}.")
    os.makedirs(out, exist_ok=True)
    started = time.time()
    base_plan = _pretrained_model(_replaced(base_plan, seed=seeds[0]), out, verbose)
    base = base_plan.config  # its preprocessing, the pretrained model's, resolved once for every run
    runs = plan_runs(base, methods, corruptions, seeds)
    for run in runs:
        run["dir"] = os.path.abspath(os.path.join(out, "runs", run["key"]))
    plans = [plan_run(run["config"], run["dir"], like=base_plan) for run in runs]  # all checked before any work
    timings_path = os.path.join(out, "timings.json")
    timings = {}
    if os.path.exists(timings_path):
        with open(timings_path) as file:
            timings = json.load(file)
    for index, (run, plan) in enumerate(zip(runs, plans), 1):
        finished = RunFolder(run["dir"]).finished
        print(f"\n[{index}/{len(runs)}] {run['key']}" + (" (finished, reused)" if finished else ""), flush=True)
        begin = time.time()
        repair_run.run_repair(plan, strategy=strategy, verbose=verbose)
        if not finished:
            timings[run["key"]] = round(time.time() - begin, 1)
            write_json_atomic(timings_path, timings)
    begin = time.time()
    setup = EvaluationSetup(dataset=base.dataset, data_dir=base.eval_data_dir or base.data_dir, corruptions=evaluated,
                            severities=tuple(severities), test_size=base.test_size, image_size=base.image_size,
                            params=base.params, backend=base.corruption_backend, seed=base.seed)
    tent = "tent" in methods  # the pretrained and the trained per-corruption models under TENT, beside the others
    twins = adapted.adapted_runs(runs) if tent else []
    results = run_evaluation([model_spec(run["dir"]) for run in runs], setup, baseline=model_spec(base.model),
                             tent=[model_spec(base.model), *(model_spec(run["dir"]) for run in twins)] if tent else (),
                             preprocessing=base_plan.preprocessing, out=os.path.join(out, "evaluation"),
                             cache_dir=cache_dir, unsafe_model_loading=base.unsafe_model_loading, verbose=verbose)
    evaluation_seconds = round(time.time() - begin, 1)
    by_source = {(os.path.abspath(entry["source"]), entry.get("adaptation")): entry
                 for entry in results["models"].values()}
    entries = {run["key"]: by_source[RunFolder(run["dir"]).file(run_folder.MODEL), None] for run in runs}
    entries["vanilla"] = results["models"][results["baseline"]]
    if tent:
        entries["tent"] = by_source[os.path.abspath(base.model), "tent"]
    for run in twins:
        entries[adapted.twin(run["key"])] = by_source[RunFolder(run["dir"]).file(run_folder.MODEL), "tent"]
    untrained = ["vanilla", "tent"] if tent else ["vanilla"]  # evaluated once, the same for every seed
    table_runs = [{"key": key, "method": key, "corruption": UNIFIED, "seed": seed}
                  for seed in seeds for key in untrained] + runs + [adapted.twin_run(run) for run in twins]
    labels = method_labels(base.repair)
    built, comparisons = benchmark_report.write_tables(out, table_runs, entries, corruptions, evaluated, labels,
                                                       "vanilla", seeds)
    first = [run for run in table_runs if run["seed"] == seeds[0]]  # transfer matrices: the first seed's models
    transfers = benchmark_report.write_transfers(out, first, entries, "vanilla", evaluated)
    record = {
        "command": command, "config": to_dict(base), "environment": environment(), "git": _git_state(),
        "corruption_code_version": corrupted_sets.corruption_code_version(),
        "seeds": {"seed": base.seed, "seeds": list(seeds),
                  "meaning": "data order, training corruption noise (seed + epoch, batch), train/test subsets and the "
                  "validation split per training seed; test corruption noise (first seed + 1000·severity, batch) "
                  "and the test subset are the first seed's for every model"},
        "methods": list(methods), "corruptions": list(corruptions), "evaluated": list(evaluated),
        "severities": list(severities), "labels": labels, "evaluation_setup": results["setup"],
        "runs": [{key: run[key] for key in ("key", "method", "corruption", "seed", "dir")}
                 | {"budget": budget(run["method"], base.repair), "config": to_dict(run["config"])} for run in runs],
        "wall_seconds": {"train": timings, "train_total": round(sum(timings.get(r["key"], 0) for r in runs), 1),
                         "evaluation_this_call": evaluation_seconds,
                         "this_call": round(time.time() - started, 1)},
        "tables": {name: {"title": t, "header": h, "rows": r} for name, (t, h, r) in built.items()},
        **comparisons,  # "paired" (AR2 − fine-tuning), "paired_tent", "paired_columns" and "offtarget"
        "transfer": {method: info["counts"] for method, info in transfers.items()},
    }
    write_json_atomic(os.path.join(out, "benchmark.json"), record)
    benchmark_report.write_markdown(os.path.join(out, "report.md"), record, built)
    return record
