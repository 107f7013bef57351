"""A benchmark's tables for its models evaluated on another test set (`python -m ar2_tf.benchmark_view`).

`write_view` matches a benchmark's runs to an evaluation of them on a second
test set (`python -m ar2_tf.evaluate` with the pretrained model as --baseline)
through the evaluation's model fingerprints, then writes Table 1, Table 2 and
the transfer matrices in the benchmark's layout. Nothing is trained or
evaluated again; models changed since the evaluation are refused. Models the
evaluation also ran under TENT (`python -m ar2_tf.evaluate --tent`) fill the TENT rows: the pretrained
model "TENT (test-time)", a fine-tuning or AR2 run its entry's "+ TENT" row
(`ar2_tf.benchmarking.adapted`).
"""

import os

from ar2_tf.benchmarking import adapted
from ar2_tf.benchmarking import report as benchmark_report
from ar2_tf.benchmarking.run import method_labels
from ar2_tf.errors import UserError
from ar2_tf.evaluation.suite import RESULTS_FILE
from ar2_tf.output_files import read_json, write_json_atomic
from ar2_tf.runs import run_folder
from ar2_tf.runs.config import RepairConfig
from ar2_tf.runs.run_folder import RunFolder

BENCHMARK_FILE = "benchmark.json"
VIEW_FOLDER = "benchmark_tables"


def match_runs(benchmark_dir, record, results, weights="kept") -> tuple:
    """The benchmark's runs that `results` evaluated: (table runs with vanilla first, {run key: entry}).

    A run matches the evaluated model whose fingerprint path is its model.keras (`weights` "kept") or its
    last_phase.keras ("last-phase"); its size and
    modification time must still be the evaluated ones. The evaluation's baseline is vanilla. A matched
    run of an `adapted.ADAPTED` entry evaluated under TENT too adds its twin ("ar2_fog+tent").
    """
    if not results.get("baseline"):
        raise UserError("the evaluation has no baseline; run python -m ar2_tf.evaluate again with --baseline "
                        f"<the benchmark's pretrained model> ({record['config']['model']}): it is the vanilla row "
                        "and the CE reference.")
    by_path = {(entry["fingerprint"]["path"], entry.get("adaptation")): entry for entry in results["models"].values()}
    seeds = record["seeds"].get("seeds", [record["config"]["seed"]])
    baseline = results["models"][results["baseline"]]
    entries = {"vanilla": baseline}
    for entry in results["models"].values():  # the pretrained model under TENT (python -m ar2_tf.evaluate --tent)
        if entry.get("adaptation") == "tent" and entry["fingerprint"] == baseline["fingerprint"]:
            entries["tent"] = entry
    untrained = len(entries)
    runs = [{"key": key, "method": key, "corruption": "all", "seed": seed} for seed in seeds for key in entries]
    twins = []
    for run in record["runs"]:
        model = RunFolder(os.path.join(benchmark_dir, "runs", run["key"])).file(run_folder.MODEL_FILES[weights])
        entry = by_path.get((model, None))
        if entry is None:
            continue
        twin = by_path.get((model, "tent")) if run["method"] in adapted.ADAPTED else None
        stat = os.stat(model)
        for evaluated in filter(None, (entry, twin)):
            fingerprint = evaluated["fingerprint"]
            if (fingerprint["size"], fingerprint["mtime_ns"]) != (stat.st_size, stat.st_mtime_ns):
                raise UserError(f"{model} changed after it was evaluated; re-run the same python -m ar2_tf.evaluate "
                                "command (it re-evaluates changed models only), then this one.")
        runs.append(run)
        entries[run["key"]] = entry
        if twin is not None:
            # a run without its own seed is from a one-seed benchmark
            twins.append(adapted.twin_run({"seed": record["config"]["seed"], **run}))
            entries[twins[-1]["key"]] = twin
    runs += twins
    if len(entries) == untrained:  # vanilla (and TENT) alone
        how = ("the run folders themselves (python -m ar2_tf.evaluate --model <benchmark>/runs/<run>)"
               if weights == "kept" else f"each run's {run_folder.MODEL_FILES[weights]} (python -m ar2_tf.evaluate --model "
               f"<benchmark>/runs/<run>/{run_folder.MODEL_FILES[weights]}, written by scripts/last_phase.py)")
        raise UserError(f"the evaluation holds none of the {weights} models in "
                        f"{os.path.join(benchmark_dir, 'runs')}; evaluate {how}.")
    return runs, entries


def write_view(benchmark_dir, evaluation_dir, out=None, weights="kept") -> dict:
    """Writes the benchmark's tables for the models of `evaluation_dir` into `out` (default
    evaluation_dir/benchmark_tables) and returns the record written to view.json.

    `weights`: which model of each run the evaluation measured (`run_folder.MODEL_FILES`): "kept" (model.keras, what the
    clean-error guard chose) or "last-phase" (last_phase.keras, the last epoch's weights).
    """
    if weights not in run_folder.MODEL_FILES:
        raise UserError(f"`weights` must be one of {', '.join(run_folder.MODEL_FILES)}, not {weights!r}.")
    record = read_json(os.path.join(benchmark_dir, BENCHMARK_FILE),
                       "not a benchmark folder: pass as `benchmark_dir` the folder of "
                       "python -m ar2_tf.benchmark --out.")
    results = read_json(os.path.join(evaluation_dir, RESULTS_FILE),
                        "not an evaluation folder: pass as `evaluation_dir` the folder of "
                        "python -m ar2_tf.evaluate --out.")
    if not results.get("complete"):
        raise UserError(f"the evaluation in {evaluation_dir!r} is not complete; re-run its python -m ar2_tf.evaluate "
                        "command to finish it (finished cells are kept), then this one.")
    runs, entries = match_runs(benchmark_dir, record, results, weights)
    evaluated = list(results["setup"]["corruptions"])
    repaired_for = [c for c in record["corruptions"] if c in evaluated]
    out = out or os.path.join(evaluation_dir, VIEW_FOLDER)
    os.makedirs(out, exist_ok=True)
    labels = method_labels(RepairConfig(**record["config"]["repair"]))
    seeds = tuple(record["seeds"].get("seeds", [record["config"]["seed"]]))
    built, comparisons = benchmark_report.write_tables(out, runs, entries, repaired_for, evaluated, labels,
                                                       "vanilla", seeds)
    first = [run for run in runs if run.get("seed", seeds[0]) == seeds[0]]
    transfers = benchmark_report.write_transfers(out, first, entries, "vanilla", evaluated)
    view = {"benchmark": benchmark_dir, "evaluation": evaluation_dir, "tables_dir": out, "weights": weights,
            "evaluation_setup": results["setup"],
            "runs": {key: entry["source"] for key, entry in entries.items()},
            "missing_runs": [run["key"] for run in record["runs"] if run["key"] not in entries],
            "tables": {name: {"title": t, "header": h, "rows": r} for name, (t, h, r) in built.items()},
            **comparisons, "transfer": {method: info["counts"] for method, info in transfers.items()}}
    write_json_atomic(os.path.join(out, "view.json"), view)
    return view
