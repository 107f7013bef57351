"""The benchmark's tables, from one evaluation of every model (see `ar2_tf.benchmarking.run`).

- Table 1 (paper Table 1 style): one row per method: clean error, the CE of
  each corruption and mCE. A per-corruption method (fine-tuning, AR2) fills
  the column of corruption c with its model repaired for c; a single model
  (vanilla, AugMix, unified AR2) fills every column. Two mCEs: over the
  repaired-for corruptions (every row has them) and over all evaluated ones
  (single models only). `table1_repaired` is the same with only the
  repaired-for columns.
- Table 2 (paper Table 2 style): the clean error of each per-corruption model.
- Transfer matrices (paper Figure 3) of the per-corruption methods, through
  `ar2_tf.evaluation.transfer`.
- With several seeds (`ar2_tf.benchmarking.seed_statistics`): Table 1's cells as mean ± std over
  the seeds, `table1_seeds` with every seed's cell, and `paired`: AR2 − fine-tuning
  (same epochs) per repaired-for corruption with its 95 % interval and verdict.
- With "tent" among the methods, the trained per-corruption models under TENT
  (`ar2_tf.benchmarking.adapted`): rows "AR2 + TENT", "fine-tune (same epochs) + TENT"
  in Tables 1 and 2, and with several seeds `paired_tent`: the comparisons of
  `adapted.COMPARISONS` in `paired`'s layout, with a first column naming each.
- Collateral damage (`ar2_tf.benchmarking.offtarget`): `offtarget`, each per-corruption
  model's mean CE change on the evaluated corruptions it was not repaired for, and with
  several seeds `paired_columns`: AR2 − fine-tuning on target CE, clean error and that change.

CE is the unnormalised mean error (%) over severities (the CIFAR convention of
`ar2_tf.evaluation.metrics`). The evaluation's own per-model tables are thin adapters
away: `ar2_tf.evaluation.tables.table2` keys rows by the config's method, which cannot
tell the two fine-tuning budgets apart, and `ar2_tf.evaluation.transfer.run_transfer`
re-evaluates its runs; here both are rebuilt from the one shared evaluation.
"""

import os

from ar2_tf.benchmarking import adapted, offtarget, seed_statistics
from ar2_tf.evaluation import tables, transfer
from ar2_tf.runs.config import RepairConfig
from ar2_tf.runs.methods import BENCHMARK_ENTRIES, budget, get_method

# Rows in table order, and the per-corruption ones (one model per repaired-for corruption): the registry's,
# then its trained per-corruption models under TENT.
TRANSFERRED = tuple(key for key, entry in BENCHMARK_ENTRIES.items() if entry.per_corruption)
ROW_ORDER = tuple(BENCHMARK_ENTRIES) + adapted.ROWS
PER_CORRUPTION = TRANSFERRED + adapted.ROWS
UNTRAINED = tuple(key for key, entry in BENCHMARK_ENTRIES.items() if entry.method is None)
PAIRED_COLUMNS = ["corruption", "mean", "low", "high", "n", "verdict"]


def _mean(values):
    values = list(values)
    return sum(values) / len(values) if values and None not in values else None


def method_rows(runs, entries):
    """{method: (clean error, {corruption: CE})} from the runs and their evaluation entries.

    Args:
        runs: dicts with "key", "method", "corruption" ("all" for a single model).
        entries: {run key: evaluation entry of `ar2_tf.evaluation.suite.run_evaluation`}.
    """
    rows = {}
    for method in ROW_ORDER:
        chosen = [run for run in runs if run["method"] == method and run["key"] in entries]
        if not chosen:
            continue
        if method in PER_CORRUPTION:
            ce = {run["corruption"]: entries[run["key"]]["summary"]["unnormalized"]["ce"].get(run["corruption"])
                  for run in chosen}
            rows[method] = (_mean(entries[run["key"]]["clean"] for run in chosen), ce)
        else:
            entry = entries[chosen[0]["key"]]
            rows[method] = (entry["clean"], dict(entry["summary"]["unnormalized"]["ce"]))
    return rows


def table1(runs, entries, repaired_for, evaluated, labels) -> tuple:
    """Clean error, CE per evaluated corruption, mCE over `repaired_for` and over `evaluated`."""
    header = ["method", "budget", "clean", *evaluated, f"mCE ({len(repaired_for)} repaired-for)",
              f"mCE (all {len(evaluated)})"]
    rows = []
    for method, (clean, ce) in method_rows(runs, entries).items():
        rows.append([labels[method]["label"], labels[method]["budget"], clean, *(ce.get(c) for c in evaluated),
                     _mean(ce.get(c) for c in repaired_for), _mean(ce.get(c) for c in evaluated)])
    title = ("Table 1: clean error and CE (%, mean error over severities 1-5); per-corruption methods "
             "fill each column with their model repaired for that corruption")
    return title, header, rows


def table1_repaired(runs, entries, repaired_for, labels) -> tuple:
    """Table 1 restricted to the repaired-for corruptions: the comparison every method has."""
    header = ["method", "budget", "clean", *repaired_for, "mCE"]
    rows = [[labels[m]["label"], labels[m]["budget"], clean, *(ce.get(c) for c in repaired_for),
             _mean(ce.get(c) for c in repaired_for)] for m, (clean, ce) in method_rows(runs, entries).items()]
    return "Table 1 on the repaired-for corruptions: clean error and CE (%)", header, rows


def table2(runs, entries, repaired_for, labels, vanilla_clean=None) -> tuple:
    """Clean error (%) of each per-corruption model: rows method, columns repaired-for corruption."""
    rows = []
    for method in PER_CORRUPTION:
        cells = {run["corruption"]: entries[run["key"]]["clean"] for run in runs
                 if run["method"] == method and run["key"] in entries}
        if cells:
            values = [cells.get(c) for c in repaired_for]
            rows.append([labels[method]["label"], *values, _mean(v for v in values if v is not None)])
    title = "Table 2: clean error (%) of each per-corruption model"
    if vanilla_clean is not None:
        title += f"; vanilla {vanilla_clean:.2f}"
    return title, ["method", *repaired_for, "mean"], rows


def write_transfers(out, runs, entries, vanilla_key, evaluated) -> dict:
    """transfer_<method>/transfer.{csv,md,json,png} for each per-corruption entry with >= 2 models (the models
    themselves: none under TENT)."""
    base_ce = entries[vanilla_key]["summary"]["unnormalized"]["ce"]
    written = {}
    for method in TRANSFERRED:
        chosen = [run for run in runs if run["method"] == method and run["key"] in entries]
        if len(chosen) < 2:
            continue
        columns = [run["corruption"] for run in chosen]
        repaired = {run["corruption"]: entries[run["key"]]["summary"]["unnormalized"]["ce"] for run in chosen}
        matrix = transfer.transfer_matrix(base_ce, repaired, list(evaluated), columns)
        counts = transfer.transfer_counts(matrix, list(evaluated), columns)
        folder = os.path.join(out, f"transfer_{method}")
        transfer.write_transfer(folder, matrix, list(evaluated), columns, counts,
                                {"method": method, "metric": "unnormalised CE (mean error over severities), points"})
        written[method] = {"folder": folder, "counts": counts}
    return written


def seed_tables(runs, entries, repaired_for, evaluated, labels, seeds) -> tuple:
    """({table1_repaired, table1, table1_seeds}, {"paired": AR2 − fine-tuning rows, "paired_tent": the TENT
    comparisons' rows, each with its "comparison"}) over several seeds (module docstring)."""
    columns = ["clean", *evaluated, f"mCE ({len(repaired_for)} repaired-for)", f"mCE (all {len(evaluated)})"]
    cells = {}  # method -> column -> [value per seed]
    for seed in seeds:
        _, _, rows = table1([run for run in runs if run["seed"] == seed], entries, repaired_for, evaluated, labels)
        keys = {labels[method]["label"]: method for method in labels}
        for row in rows:
            method = keys[row[0]]
            for column, value in zip(columns, row[2:]):
                cells.setdefault(method, {}).setdefault(column, []).append(value)
    long_rows, aggregated = [], []
    for method, by_column in cells.items():
        # vanilla and TENT train nothing: evaluated once, listed once
        values = {c: v[:1] if method in UNTRAINED else v for c, v in by_column.items()}
        aggregated.append([labels[method]["label"], labels[method]["budget"],
                           *(seed_statistics.format_cell(*seed_statistics.mean_std(values[c])) for c in columns)])
        long_rows += [[labels[method]["label"], seed, c, value] for c in columns
                      for seed, value in zip(seeds, values[c])]
    n = f"mean ± std over {len(seeds)} seeds ({', '.join(map(str, seeds))})"
    repaired_columns = [0, *(1 + evaluated.index(c) for c in repaired_for), 1 + len(evaluated)]
    built = {
        "table1_repaired": (f"Table 1 on the repaired-for corruptions: clean error and CE (%), {n}",
                            ["method", "budget", "clean", *repaired_for, "mCE"],
                            [row[:2] + [row[2 + i] for i in repaired_columns] for row in aggregated]),
        "table1": (f"Table 1: clean error and CE (%, mean error over severities), {n}; vanilla and TENT (no "
                   "training) evaluated once",
                   ["method", "budget", *columns], aggregated),
        "table1_seeds": ("Table 1 per seed: every cell", ["method", "seed", "column", "value"], long_rows),
    }
    paired = {"paired": seed_statistics.paired_rows(cells, repaired_for, seed_statistics.AR2_VS_FINETUNE),
              "paired_tent": [{"comparison": comparison.title, **row} for comparison in adapted.COMPARISONS
                              for row in seed_statistics.paired_rows(cells, repaired_for, comparison)]}
    return built, paired


def paired_sentences(paired) -> list:
    """One sentence per row: its comparison (AR2 − fine-tuning (same epochs) unless the row names one) for its
    corruption, and the compared column where the row names one ("clean error"), with the interval and verdict."""
    lines = []
    for row in paired:
        title = row.get("comparison", seed_statistics.AR2_VS_FINETUNE.title) + (f", {row['column']}" if "column" in row
                                                                             else "")
        what = f"- {row['corruption']}: {title} {_fmt(row['mean'])}"
        if row["low"] is None:
            lines.append(f"{what} points ({row['verdict']}).")
        else:
            lines.append(f"{what} points, 95 % t-interval over {row['n']} seed pairs [{_fmt(row['low'])}, "
                         f"{_fmt(row['high'])}]: {row['verdict']}.")
    return lines


def write_tables(out, runs, entries, repaired_for, evaluated, labels, vanilla_key, seeds=(0,)) -> tuple:
    """Writes the tables as .md/.csv/.json; returns ({name: (title, header, rows)}, {"paired": [...],
    "paired_tent": [...], "paired_columns": [...], "offtarget": [...]}, the seed-paired comparisons and the
    off-target changes).

    One seed: table1, table1_repaired and table2 (runs need a "seed" only with several seeds), and no
    comparison. Several seeds: `seed_tables`, plus `paired` (also written) with AR2 − fine-tuning per
    corruption, and `paired_tent` (written where the TENT rows were evaluated) with the TENT comparisons.
    Either way `offtarget` (with vanilla evaluated), and with several seeds `paired_columns`
    (`ar2_tf.benchmarking.offtarget`).
    """
    paired = {"paired": [], "paired_tent": []}
    if len(seeds) > 1:
        built, paired = seed_tables(runs, entries, list(repaired_for), list(evaluated), labels, list(seeds))
        built["paired"] = (f"{seed_statistics.AR2_VS_FINETUNE.title}, CE points, seed-paired, 95 % Student-t interval",
                           PAIRED_COLUMNS, [[row[k] for k in PAIRED_COLUMNS] for row in paired["paired"]])
        if paired["paired_tent"]:
            columns = ["comparison", *PAIRED_COLUMNS]
            built["paired_tent"] = ("Repaired models under TENT: CE points, seed-paired, 95 % Student-t interval",
                                    columns, [[row[k] for k in columns] for row in paired["paired_tent"]])
    else:
        vanilla_clean = entries[vanilla_key]["clean"] if vanilla_key in entries else None
        built = {"table1_repaired": table1_repaired(runs, entries, repaired_for, labels),
                 "table1": table1(runs, entries, repaired_for, evaluated, labels),
                 "table2": table2(runs, entries, repaired_for, labels, vanilla_clean)}
    collateral, records = offtarget.offtarget_tables(runs, entries, list(repaired_for), list(evaluated), labels,
                                                     vanilla_key, list(seeds), PER_CORRUPTION, paired["paired"])
    built |= collateral
    paired |= records
    for name, table in built.items():
        tables.write_table(out, name, table)
    return built, paired


def budget_lines(record):
    """What each benchmark entry that was run trained for, in the schedule's unit (epochs or batches)."""
    repair = RepairConfig(**record["config"]["repair"])
    t, n, m = repair.iterations, repair.refine_steps, repair.finetune_steps
    lines = []
    for key, entry in BENCHMARK_ENTRIES.items():
        if key not in record["methods"]:
            continue
        if entry.adaptation:
            lines.append(f"- {entry.label}: {entry.summary}.")
            twins = [BENCHMARK_ENTRIES[k].label for k in adapted.ADAPTED if k in record["methods"]]
            if twins:
                lines.append(f"- {' + TENT, '.join(twins)} + TENT: each of their models adapted on each test set "
                             "the same way, the rows answering \"repair, then also adapt at test time?\".")
        elif entry.method is not None:
            schedule = "" if get_method(entry.method).single_pass else f" (T={t}, N={n}, M={m})"
            lines.append(f"- {entry.label}: {budget(key, repair)}, {entry.summary}{schedule}.")
    return lines


def write_markdown(path, record, built):
    """report.md: the tables, what was run exactly, and the wall time."""
    config = record["config"]
    repair = config["repair"]
    seconds = record["wall_seconds"]
    lines = ["# Corruption-robustness benchmark", "", "Command:", "", "```", record["command"] or "(library call)",
             "```", ""]
    for name in ("table1_repaired", "table1", "table2", "offtarget", "paired", "paired_columns", "paired_tent"):
        if name in built:
            lines += [tables.to_markdown(*built[name]), ""]
    # paired_columns' target CE rows are `paired`'s, whose sentences come first
    columns = [row for row in record.get("paired_columns", []) if row["column"] != offtarget.TARGET]
    lines += [*paired_sentences(record.get("paired", [])), *paired_sentences(columns),
              *paired_sentences(record.get("paired_tent", [])), ""]
    for method, counts in record["transfer"].items():
        lines.append(f"Transfer matrix of `{method}` (transfer_{method}/transfer.md, .png): {counts['worse']} of "
                     f"{counts['off_diagonal_cells']} off-diagonal cells worse than vanilla; mean diagonal change "
                     f"{_fmt(counts['mean_diagonal'])}, mean off-diagonal change {_fmt(counts['mean_off_diagonal'])} "
                     "points.")
    evaluation = record["evaluation_setup"]
    lines += ["", "## What was run", "",
              f"- Pretrained model: `{config['model']}` (preprocessing `{config['preprocessing'] or 'by model'}`).",
              f"- Training data: `{config['dataset']}` from `{config['data_dir']}`, {config['train_size'] or 'all'} "
              f"images (seeded subset), batch {config['batch_size']}, corruptions at severity {config['severity']}, "
              f"`{config['corruption_params'] or 'dataset default'}` parameters, `{config['corruption_backend']}` "
              "backend.",
              f"- Evaluation: `{evaluation['data_dir']}`, {evaluation['test_size'] or 'all'} test images, "
              f"{len(record['evaluated'])} corruptions x severities {record['severities']}, generated with the "
              f"`{evaluation['params']}` parameters (corruption code {record['corruption_code_version']}); every "
              "model sees the same corrupted images.",
              f"- SGD momentum {repair['momentum']}, fine-tuning lr {repair['finetune_learning_rate']}, refinement lr "
              f"{repair['refine_learning_rate']}; AR2 k={repair['k']}, α={repair['alpha']}, CAM normalisation "
              f"`{repair['cam_normalization']}`, top-k from the `{repair['topk_from']}` model.",
              *budget_lines(record),
              f"- Seeds {', '.join(map(str, record['seeds'].get('seeds', [config['seed']])))} "
              f"({record['seeds']['meaning']}).",
              f"- Versions: {', '.join(f'{k} {v}' for k, v in record['environment'].items())}; git "
              f"{(record['git'] or {}).get('commit', 'unknown')}.", "",
              "## Wall time", "", "| run | seconds |", "| --- | --- |"]
    lines += [f"| {key} | {value:.0f} |" for key, value in seconds["train"].items()]
    lines += [f"| all training | {seconds['train_total']:.0f} |",
              f"| evaluation (this call) | {seconds['evaluation_this_call']:.0f} |",
              f"| this call in all | {seconds['this_call']:.0f} |", ""]
    tables.write_text_atomic(path, "\n".join(lines))


def _fmt(value):
    return "–" if value is None else f"{value:+.2f}"
