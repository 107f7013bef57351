"""`python -m ar2_tf.benchmark_view`: a benchmark's tables for its models evaluated on another test set.

`python -m ar2_tf.benchmark` measures its models on one test set. To see the same models on
another (a second view, e.g. the JPEG copy of the CIFAR-10 test split), evaluate the run
folders with `python -m ar2_tf.evaluate`, the benchmark's pretrained model as --baseline,
then write Table 1, Table 2 and the transfer matrices in the benchmark's layout from that
evaluation. Nothing is trained or evaluated again; models that changed since the evaluation
are refused.

Example (results/cifar10_benchmark/jpeg_test_view, see its README.md):
    python -m ar2_tf.evaluate --baseline ../shared/models/cifar10_resnet20v1.h5 \\
        --model results/cifar10_benchmark/runs/ar2_fog --model ... --dataset cifar10 \\
        --data-dir ../shared/data/cifar10/cifar10_jpeg_bytes_official_order.npz \\
        --out results/cifar10_benchmark/jpeg_test_view
    python -m ar2_tf.benchmark_view --benchmark results/cifar10_benchmark \\
        --evaluation results/cifar10_benchmark/jpeg_test_view
"""

import argparse
import os
import sys

from ar2_tf import benchmark_report, tables
from ar2_tf.cli import run_main
from ar2_tf.errors import UserError
from ar2_tf.evaluation_suite import RESULTS_FILE
from ar2_tf.runs import read_json, write_json_atomic

BENCHMARK_FILE = "benchmark.json"
VIEW_FOLDER = "benchmark_tables"


def match_runs(benchmark_dir, record, results) -> tuple:
    """The benchmark's runs that `results` evaluated: (table runs with vanilla first, {run key: entry}).

    A run matches the evaluated model whose fingerprint path is its model.keras; its size and
    modification time must still be the evaluated ones. The evaluation's baseline is vanilla.
    """
    if not results.get("baseline"):
        raise UserError("the evaluation has no baseline; evaluate again with --baseline <the benchmark's pretrained "
                        f"model> ({record['config']['model']}): it is the vanilla row and the CE reference.")
    by_path = {entry["fingerprint"]["path"]: entry for entry in results["models"].values()}
    runs = [{"key": "vanilla", "method": "vanilla", "corruption": "all"}]
    entries = {"vanilla": results["models"][results["baseline"]]}
    for run in record["runs"]:
        model = os.path.abspath(os.path.join(benchmark_dir, "runs", run["key"], "model.keras"))
        entry = by_path.get(model)
        if entry is None:
            continue
        stat = os.stat(model)
        if (entry["fingerprint"]["size"], entry["fingerprint"]["mtime_ns"]) != (stat.st_size, stat.st_mtime_ns):
            raise UserError(f"{model} changed after it was evaluated; re-run the same python -m ar2_tf.evaluate "
                            "command (it re-evaluates changed models only), then this one.")
        runs.append(run)
        entries[run["key"]] = entry
    if len(runs) == 1:
        raise UserError(f"the evaluation holds none of the models in {os.path.join(benchmark_dir, 'runs')}; "
                        "evaluate the run folders themselves (--model <benchmark>/runs/<run>).")
    return runs, entries


def write_view(benchmark_dir, evaluation_dir, out=None) -> dict:
    """Writes the benchmark's tables for the models of `evaluation_dir` into `out` (default
    evaluation_dir/benchmark_tables) and returns the record written to view.json."""
    record = read_json(os.path.join(benchmark_dir, BENCHMARK_FILE),
                       "not a benchmark folder: pass the --out folder of python -m ar2_tf.benchmark.")
    results = read_json(os.path.join(evaluation_dir, RESULTS_FILE),
                        "not an evaluation folder: pass the --out folder of python -m ar2_tf.evaluate.")
    if not results.get("complete"):
        raise UserError(f"the evaluation in {evaluation_dir!r} is not complete; re-run its python -m ar2_tf.evaluate "
                        "command to finish it (finished cells are kept), then this one.")
    runs, entries = match_runs(benchmark_dir, record, results)
    evaluated = list(results["setup"]["corruptions"])
    repaired_for = [c for c in record["corruptions"] if c in evaluated]
    out = out or os.path.join(evaluation_dir, VIEW_FOLDER)
    os.makedirs(out, exist_ok=True)
    built = benchmark_report.write_tables(out, runs, entries, repaired_for, evaluated, record["labels"], "vanilla")
    transfers = benchmark_report.write_transfers(out, runs, entries, "vanilla", evaluated)
    view = {"benchmark": benchmark_dir, "evaluation": evaluation_dir, "tables_dir": out,
            "evaluation_setup": results["setup"],
            "runs": {key: entry["source"] for key, entry in entries.items()},
            "missing_runs": [run["key"] for run in record["runs"] if run["key"] not in entries],
            "tables": {name: {"title": t, "header": h, "rows": r} for name, (t, h, r) in built.items()},
            "transfer": {method: info["counts"] for method, info in transfers.items()}}
    write_json_atomic(os.path.join(out, "view.json"), view)
    return view


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m ar2_tf.benchmark_view", description=__doc__.split("\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__,
                                     allow_abbrev=False)
    parser.add_argument("--benchmark", required=True, help="the --out folder of python -m ar2_tf.benchmark")
    parser.add_argument("--evaluation", required=True, help="the --out folder of python -m ar2_tf.evaluate on its runs")
    parser.add_argument("--out", help="tables folder (default: EVALUATION/benchmark_tables)")
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    view = write_view(args.benchmark, args.evaluation, args.out)
    table = view["tables"]["table1_repaired"]
    print(tables.to_markdown(table["title"], table["header"], table["rows"]))
    if view["missing_runs"]:
        print(f"not in this evaluation: {', '.join(view['missing_runs'])}")
    print(f"tables: {view['tables_dir']}")


if __name__ == "__main__":
    sys.exit(run_main(main))
