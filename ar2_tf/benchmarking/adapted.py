"""Repaired models adapted at test time: the benchmark's trained per-corruption models under TENT.

A user who can retrain asks whether to repair, then also adapt at test time. So
when "tent" is among the benchmark's methods, every model of a per-corruption
entry that trains weights (fine-tuning, AR2) is evaluated under TENT too
(`ar2_tf.baselines.tent`), beside TENT on the pretrained model. Each gives a
table row keyed "<entry>+tent" ("AR2 + TENT"), filled like its entry's row,
and with several seeds the seed-paired comparisons of `COMPARISONS`
(`ar2_tf.benchmarking.report`).

BN adaptation is left out: TENT normalises with each test batch's statistics,
which replace exactly the statistics BN adaptation re-estimates, so its model
under TENT is the pretrained model under TENT.
"""

from ar2_tf.benchmarking.seed_statistics import Comparison
from ar2_tf.runs.methods import BENCHMARK_ENTRIES, get_method

SUFFIX = "+tent"  # a twin row's key: its entry's key and this

# The entries whose models are also evaluated under TENT, and their rows, in table order.
ADAPTED = tuple(key for key, entry in BENCHMARK_ENTRIES.items()
                if entry.per_corruption and not get_method(entry.method).single_pass)


def twin(key: str) -> str:
    """The key of a run's or an entry's model under TENT: "ar2_fog" -> "ar2_fog+tent"."""
    return key + SUFFIX


ROWS = tuple(twin(key) for key in ADAPTED)

# Seed-paired, per repaired-for corruption: does TENT add to a repair, does a repair add to TENT,
# and does AR2 still beat fine-tuning once both are adapted.
COMPARISONS = (
    Comparison(twin("ar2"), "ar2", "AR2 + TENT − AR2", ("AR2 + TENT", "AR2")),
    Comparison(twin("ar2"), "tent", "AR2 + TENT − TENT (pretrained)", ("AR2 + TENT", "TENT")),
    Comparison(twin("ar2"), twin("finetune_epochs"), "AR2 + TENT − fine-tune (same epochs) + TENT",
               ("AR2 + TENT", "fine-tune + TENT")),
)


def adapted_runs(runs) -> list:
    """The planned runs (`ar2_tf.benchmarking.run.plan_runs`) whose models are also evaluated under TENT."""
    return [run for run in runs if run["method"] in ADAPTED]


def twin_run(run) -> dict:
    """The table run of `run`'s model under TENT: its key and method with `SUFFIX`, the same corruption and seed."""
    return {"key": twin(run["key"]), "method": twin(run["method"]), "corruption": run["corruption"],
            "seed": run["seed"]}


def twin_labels(labels) -> dict:
    """{twin key: {"label": "AR2 + TENT", "budget": "8 epochs + 1 step per test batch"}} from the entries' labels."""
    return {twin(key): {"label": f"{labels[key]['label']} + TENT",
                        "budget": f"{labels[key]['budget']} + {labels['tent']['budget']}"} for key in ADAPTED}
