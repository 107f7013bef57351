"""The budget question: AR2 against fine-tuning with the same epochs, seed-paired, at each benchmark's budget.

    python scripts/budget_table.py results/cifar10_benchmark_seeds results/budget_gaussian_noise_24
    python scripts/budget_table.py results/cifar10_benchmark_seeds results/budget_gaussian_noise_24 --write docs/results/benchmark.md

Each argument is the --out folder of a `python -m ar2_tf.benchmark --seeds ...` run. For every
repaired-for corruption of each (optionally only those of --corruptions) one row: the budget,
the CE (%, mean error over severities 1-5) of AR2 and of fine-tuning with the same epochs as
mean ± std over the seeds, AR2 − fine-tuning seed by seed with its 95 % Student-t interval
(`ar2_tf.benchmarking.seed_statistics`, the benchmark's own rule), the clean errors of those models, and
the untrained references on that corruption: vanilla, BN adaptation (trained for that
corruption, one pass) and TENT, where the benchmark ran them. Every number is read from the
benchmark's evaluation (evaluation/evaluation.json), nothing is retrained. `--write` puts the
table between `<!-- budget:start -->` and `<!-- budget:end -->`.
"""

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from readme_tables import write_into  # noqa: E402

from ar2_tf.benchmarking import seed_statistics  # noqa: E402
from ar2_tf.runs.run_folder import MODEL  # noqa: E402

HEADER = ["corruption", "budget (each)", "seeds", "AR2 CE", "fine-tune CE", "AR2 − fine-tune [95 % CI]", "verdict",
          "AR2 clean", "fine-tune clean", "vanilla CE", "BN adaptation CE", "TENT CE"]


def _read(path):
    try:
        with open(path) as file:
            return json.load(file)
    except (OSError, json.JSONDecodeError) as problem:
        print(f"cannot read {path} ({problem.__class__.__name__}): pass the --out folder of a finished python -m "
              "ar2_tf.benchmark run (an unfinished one resumes when its command is run again).", file=sys.stderr)
        raise SystemExit(2) from None


def benchmark_cells(folder) -> tuple:
    """(benchmark record, {(entry key, corruption, seed): (clean, {corruption: CE})}) of a benchmark folder.

    The untrained rows (vanilla, TENT) are keyed with corruption "all" and seed None."""
    record = _read(os.path.join(folder, "benchmark.json"))
    results = _read(os.path.join(folder, "evaluation", "evaluation.json"))
    by_source = {(os.path.abspath(e["source"]), e.get("adaptation")): e for e in results["models"].values()}

    def cell(entry):
        return entry["clean"], entry["summary"]["unnormalized"]["ce"]

    baseline = results["models"][results["baseline"]]
    cells = {("vanilla", "all", None): cell(baseline)}
    for entry in results["models"].values():  # the pretrained model under TENT, not a repaired one under TENT
        if entry.get("adaptation") == "tent" and entry["fingerprint"] == baseline["fingerprint"]:
            cells["tent", "all", None] = cell(entry)
    for run in record["runs"]:
        entry = by_source.get((os.path.abspath(os.path.join(run["dir"], MODEL)), None))
        if entry is not None:
            cells[run["method"], run["corruption"], run.get("seed", record["config"]["seed"])] = cell(entry)
    return record, cells


def _ce(cells, method, corruption, seed=None, of=None):
    found = cells.get((method, corruption, seed))
    return None if found is None else found[1].get(of or corruption)


def rows_of(folder, only=None) -> list:
    """One table row per repaired-for corruption of the benchmark in `folder` (see the module docstring)."""
    record, cells = benchmark_cells(folder)
    seeds = record["seeds"].get("seeds", [record["config"]["seed"]])
    budget = record["labels"]["ar2"]["budget"]
    rows = []
    for corruption in record["corruptions"]:
        if only and corruption not in only:
            continue
        ar2 = [_ce(cells, "ar2", corruption, s) for s in seeds]
        tuned = [_ce(cells, "finetune_epochs", corruption, s) for s in seeds]
        pairs = [a - f for a, f in zip(ar2, tuned) if a is not None and f is not None]
        interval = seed_statistics.paired_interval(pairs)
        clean = {m: [cells[m, corruption, s][0] for s in seeds if (m, corruption, s) in cells]
                 for m in ("ar2", "finetune_epochs")}
        bn = [_ce(cells, "bn_adapt", corruption, s) for s in seeds]
        rows.append([
            corruption, budget, len(pairs), _cell(ar2), _cell(tuned), _difference(interval), interval["verdict"],
            _cell(clean["ar2"]), _cell(clean["finetune_epochs"]),
            _number(_ce(cells, "vanilla", "all", of=corruption)), _cell(bn),
            _number(_ce(cells, "tent", "all", of=corruption))])
    return rows


def _cell(values):
    return seed_statistics.format_cell(*seed_statistics.mean_std(values))


def _number(value):
    return "–" if value is None else f"{value:.1f}"


def _difference(interval):
    if interval["mean"] is None:
        return "–"
    if interval["low"] is None:
        return f"{interval['mean']:+.1f}"
    return f"{interval['mean']:+.1f} [{interval['low']:+.1f}, {interval['high']:+.1f}]"


def to_markdown(rows) -> str:
    lines = ["| " + " | ".join(HEADER) + " |", "| " + " | ".join("---" for _ in HEADER) + " |"]
    return "\n".join(lines + ["| " + " | ".join(str(value) for value in row) + " |" for row in rows])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("benchmarks", nargs="+", help="--out folders of python -m ar2_tf.benchmark --seeds ...")
    parser.add_argument("--corruptions", help="only these repaired-for corruptions, comma-separated "
                                              "(default: each benchmark's)")
    parser.add_argument("--write", help="Markdown page to rewrite between the budget markers (docs/results/benchmark.md)")
    args = parser.parse_args(argv)
    only = set(args.corruptions.split(",")) if args.corruptions else None
    table = to_markdown([row for folder in args.benchmarks for row in rows_of(folder, only)])
    print(table)
    if args.write:
        write_into(args.write, table, "budget")


if __name__ == "__main__":
    main()
