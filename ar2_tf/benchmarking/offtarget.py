"""Collateral damage: what repairing a model for one corruption does to the corruptions it was not repaired for.

A per-corruption model (fine-tuning, AR2, BN adaptation, and the trained ones under TENT:
`ar2_tf.benchmarking.adapted`) repaired for corruption t has the off-target CE change

    off(t) = mean over the evaluated corruptions c ≠ t of [CE_model(c) − CE_vanilla(c)]

in points (negative: better than the pretrained model): the mean of the off-diagonal cells of
its column of the transfer matrix (`ar2_tf.evaluation.transfer`). The models under TENT are
measured against vanilla too: what a user gets on the other corruptions against keeping the
pretrained model. off(t) is None when t is the only evaluated corruption, or when a cell of its
column is missing: a mean over fewer corruptions would not compare with the other columns.

- `offtarget` table: a row per per-corruption method, a column per repaired-for corruption and
  their mean, beside the row's clean error and its mCE on its targets (Table 1's "clean" and
  "mCE"), so what a repair gains and what it costs read on one line. With several seeds each
  cell is mean ± std over the seeds.
- `paired_columns` (several seeds): AR2 − fine-tuning (same epochs), seed-paired per
  repaired-for corruption with its 95 % Student-t interval (`ar2_tf.benchmarking.seed_statistics`), on
  three columns: target CE (the `paired` table's rows), the two models' clean error and their
  off-target CE change.
"""

from ar2_tf.benchmarking import seed_statistics
from ar2_tf.evaluation import transfer

TARGET, CLEAN, OFF_TARGET = "target CE", "clean error", "off-target CE change"  # compared columns, in order
COLUMNS = (TARGET, CLEAN, OFF_TARGET)
PAIRED_COLUMNS = ["column", "corruption", "mean", "low", "high", "n", "verdict"]


def _mean(values):
    values = list(values)
    return sum(values) / len(values) if values and None not in values else None


def offtarget_changes(matrix, rows, columns) -> list:
    """Per column j of a transfer matrix (rows: evaluated corruptions, columns: repaired-for ones): the mean of
    its cells on the rows ≠ columns[j]; None without such a row or when one of those cells is None."""
    return [_mean(line[j] for row, line in zip(rows, matrix) if row != column) for j, column in enumerate(columns)]


def model_cells(runs, entries, vanilla_key, evaluated, methods, seeds) -> dict:
    """{method: {column: {repaired-for corruption: [value per seed]}}} of the per-corruption models, for the
    columns TARGET, CLEAN and OFF_TARGET; None for a seed without that model, so every list follows `seeds`.
    Empty without the vanilla entry (no reference).

    Args:
        runs: dicts with "key", "method", "corruption", and "seed" with several seeds.
        entries: {run key: evaluation entry of `ar2_tf.evaluation.suite.run_evaluation`}.
        methods: the per-corruption row keys, in table order.
    """
    if vanilla_key not in entries:
        return {}
    base_ce = entries[vanilla_key]["summary"]["unnormalized"]["ce"]
    cells = {}
    for method in methods:
        for index, seed in enumerate(seeds):
            chosen = [run for run in runs if run["method"] == method and run["key"] in entries
                      and run.get("seed", seeds[0]) == seed]
            columns = [run["corruption"] for run in chosen]
            ce = {run["corruption"]: entries[run["key"]]["summary"]["unnormalized"]["ce"] for run in chosen}
            changes = offtarget_changes(transfer.transfer_matrix(base_ce, ce, list(evaluated), columns),
                                        list(evaluated), columns)
            for run, change in zip(chosen, changes):
                target = run["corruption"]
                values = (ce[target].get(target), entries[run["key"]]["clean"], change)
                for column, value in zip(COLUMNS, values):
                    by_seed = cells.setdefault(method, {}).setdefault(column, {})
                    by_seed.setdefault(target, [None] * len(seeds))[index] = value
    return cells


def offtarget_table(cells, repaired_for, labels, seeds) -> tuple:
    """(title, header, rows): per method its clean error and mCE on its targets (means over the repaired-for
    corruptions, the mCE and the mean off(t) None where a model is missing), off(t) per repaired-for corruption t
    and their mean; numbers with one seed, "mean ± std" over several (each seed's mean first, as in Table 1)."""
    header = ["method", "budget", "clean", "mCE (targets)", *repaired_for, "mean off-target"]
    n = len(seeds)
    rows = []
    for method, by_column in cells.items():
        # [value per seed] per repaired-for corruption, then each seed's mean over them; the clean error over the
        # models there are, as Table 1's
        grid = {column: [by_column[column].get(c, [None] * n) for c in repaired_for] for column in COLUMNS}
        mean = {column: [_mean(values[i] for values in grid[column] if column != CLEAN or values[i] is not None)
                         for i in range(n)] for column in COLUMNS}
        values = [mean[CLEAN], mean[TARGET], *grid[OFF_TARGET], mean[OFF_TARGET]]
        rows.append([labels[method]["label"], labels[method]["budget"],
                     *(v[0] if n == 1 else seed_statistics.format_cell(*seed_statistics.mean_std(v)) for v in values)])
    title = ("Collateral damage: mean CE change (points, vs vanilla; negative: better) on the evaluated corruptions "
             "each model was not repaired for, per repaired-for corruption, beside clean error and mCE (%) on the "
             "targets")
    if len(seeds) > 1:
        title += f"; mean ± std over {len(seeds)} seeds"
    return title, header, rows


def offtarget_values(cells, repaired_for, labels, seeds) -> list:
    """One dict per method and repaired-for corruption it has a model for: off(t) per seed, their mean, std and
    n (benchmark.json)."""
    return [{"method": method, "label": labels[method]["label"], "corruption": corruption, "seeds": list(seeds),
             "values": values, **dict(zip(("mean", "std", "n"), seed_statistics.mean_std(values)))}
            for method, by_column in cells.items() for corruption in repaired_for
            if (values := by_column[OFF_TARGET].get(corruption)) is not None]


def paired_columns(cells, target_rows, repaired_for) -> list:
    """AR2 − fine-tuning (same epochs) per repaired-for corruption, each row with its "column": `target_rows`
    (the `paired` rows) as TARGET, then CLEAN and OFF_TARGET from `cells`, ordered by corruption then column.
    A column without any seed pair (off-target with one evaluated corruption) has no row."""
    rows = [{"column": TARGET, **row} for row in target_rows]
    for column in (CLEAN, OFF_TARGET):
        by_row = {method: by_column[column] for method, by_column in cells.items()}
        rows += [{"column": column, **row} for row in
                 seed_statistics.paired_rows(by_row, repaired_for, seed_statistics.AR2_VS_FINETUNE) if row["n"]]
    order = list(repaired_for)
    return sorted(rows, key=lambda row: (order.index(row["corruption"]), COLUMNS.index(row["column"])))


def offtarget_tables(runs, entries, repaired_for, evaluated, labels, vanilla_key, seeds, methods,
                     target_rows) -> tuple:
    """({"offtarget": table, "paired_columns": table with several seeds}, {"offtarget": `offtarget_values`,
    "paired_columns": `paired_columns` rows, [] with one seed}); tables as (title, header, rows).

    Args:
        methods: the per-corruption row keys, in table order.
        target_rows: the AR2 − fine-tuning rows on the target CE (`ar2_tf.benchmarking.report.seed_tables`).
    """
    cells = model_cells(runs, entries, vanilla_key, evaluated, methods, seeds)
    built = {"offtarget": offtarget_table(cells, repaired_for, labels, seeds)} if cells else {}
    records = {"offtarget": offtarget_values(cells, repaired_for, labels, seeds), "paired_columns": []}
    if len(seeds) > 1:
        records["paired_columns"] = paired_columns(cells, target_rows, repaired_for)
        built["paired_columns"] = (f"{seed_statistics.AR2_VS_FINETUNE.title} on the target CE, the clean error and the "
                                   "mean off-target CE change (points), seed-paired, 95 % Student-t interval",
                                   PAIRED_COLUMNS, [[row[k] for k in PAIRED_COLUMNS]
                                                    for row in records["paired_columns"]])
    return built, records
