"""The method registry: what each repair method trains, with which parts, schedule and budget.

The one owner of these rules: training (`Method.build_trainer`, `Method.pipeline`, `Method.callbacks`, with
the parts of `ar2_tf.runs.method_parts`), each run's report, the benchmark and its tables all read them
from here.

Trainer methods (`method`), all from the same pretrained classifier on the
same training split, evaluated by the same code:

- "ar2": `RepairModel` with T iterations of N refinement and M fine-tuning steps.
- "finetune": the paper's ablation, fine-tuning alone on clean + corrupted
  images: the same schedule with N = 0, i.e. T·M fine-tuning steps.
- "augmix": AugMix fine-tuning (`ar2_tf.baselines.augmix_model`): clean + two
  AugMix views, CE + λ·JSD, for T·(N+M) steps (AR2's whole budget), at the
  fine-tuning learning rate. It never sees the corruption: `config.corruption`
  only decides what the run's before/after report evaluates.
- "bn-adapt": BatchNorm statistics re-estimated on the corrupted training
  images (`ar2_tf.baselines.bn_adapt`): one pass, no gradient step, whatever T, N, M say.
  No validation split and no phase selection: there is one phase, and a model whose
  statistics are the corrupted domain's is meant for that domain (Schneider et al.
  measure it there). Its clean error is reported, not constrained; exporting a clean
  rise still takes the export's `allow_clean_drop`.

Benchmark entries (the benchmark's `methods`) are trainer methods
with a budget and a scope: "finetune_epochs" is "finetune" given AR2's whole
T·(N+M) budget, "unified" is "ar2" on all 15 corruptions at once, "vanilla" is
the pretrained model itself, and "tent" is the pretrained model adapted at test
time (`ar2_tf.baselines.tent`): it trains nothing, so it is no `method`.
"""

import dataclasses
from typing import TYPE_CHECKING, Callable

from ar2_tf.errors import UserError, check_choice
from ar2_tf.runs import method_parts

if TYPE_CHECKING:  # the registry stays TensorFlow-free: commands list and check methods before importing it
    from ar2_tf.method.schedule import Schedule


@dataclasses.dataclass(frozen=True)
class Method:
    """One way to train a repaired model (a `method` value)."""

    name: str  # the `method` value
    refines: bool  # runs AR2's refinement phase (CAMs against the frozen reference; its CAM panels are logged)
    whole_budget: bool  # fine-tunes for AR2's whole T·(N+M) steps instead of its T·M fine-tuning phases
    single_pass: bool = False  # one epoch over the data whatever the schedule (no gradient steps: bn-adapt)
    selects_phase: bool = True  # keeps its best phase within `max_clean_drop` on a validation split
    build_trainer: Callable = method_parts.repair_trainer  # (classifier, TrainConfig) -> compiled Keras model
    batches: Callable = method_parts.corrupted_batches  # (split, TrainConfig, **pipeline arguments) -> batches

    def schedule(self, repair) -> "Schedule":
        """The T x (refinement, fine-tuning) steps this method runs under `repair`'s settings."""
        from ar2_tf.method.schedule import Schedule

        if self.single_pass:
            return Schedule(1, 0, 1, "epoch")
        if self.refines:
            return Schedule(repair.iterations, repair.refine_steps, repair.finetune_steps, repair.step_unit)
        steps = repair.refine_steps + repair.finetune_steps if self.whole_budget else repair.finetune_steps
        return Schedule(repair.iterations, 0, steps, repair.step_unit)

    def pipeline(self, split, config, preprocessing, schedule, start_batch=0):
        """The training batches of the whole `schedule` (this method's, as the run's plan resolved it) for
        `build_trainer`'s model, from batch `start_batch` on."""
        per_epoch = int(split.cardinality()) // config.batch_size
        arguments = schedule.fit_arguments(per_epoch)
        return self.batches(split, config, batches_per_epoch=per_epoch,
                            total_batches=arguments["epochs"] * arguments["steps_per_epoch"],
                            batch_size=config.batch_size, preprocessing=preprocessing, seed=config.seed,
                            start_batch=start_batch)

    def callbacks(self, schedule, logdir, cam_sample, preprocessing):
        """Callbacks that drive `schedule` and log it: (schedule callback, all callbacks)."""
        return method_parts.callbacks(schedule, logdir, cam_sample, preprocessing, cam_panels=self.refines)


METHODS = {
    "ar2": Method("ar2", refines=True, whole_budget=False),
    "finetune": Method("finetune", refines=False, whole_budget=False),
    "augmix": Method("augmix", refines=False, whole_budget=True, build_trainer=method_parts.augmix_trainer,
                     batches=method_parts.augmix_batches),
    "bn-adapt": Method("bn-adapt", refines=False, whole_budget=False, single_pass=True, selects_phase=False,
                       build_trainer=method_parts.bn_adapt_trainer),
}


TEST_TIME = {"tent": "TENT adapts at test time and trains nothing: evaluate a model under it with "
                     "python -m ar2_tf.evaluate --tent MODEL (or python -m ar2_tf.benchmark --methods tent)."}


def get_method(name: str) -> Method:
    if name in TEST_TIME:
        raise UserError(TEST_TIME[name])
    return METHODS[check_choice("method", name, METHODS)]


def schedule_of(config) -> "Schedule":
    """The schedule a run with `TrainConfig` `config` trains (and records in its report)."""
    return get_method(config.method).schedule(config.repair)


@dataclasses.dataclass(frozen=True)
class BenchmarkEntry:
    """One row of the benchmark: a trainer method, its budget and whether it makes one model per corruption."""

    key: str  # the benchmark's `methods` value and the run-folder prefix
    label: str  # the row's name in the tables
    method: str = None  # the trainer method; None: the pretrained model itself (no training)
    adaptation: str = None  # with method None: evaluated under this test-time adaptation ("tent")
    per_corruption: bool = False  # one model per repaired-for corruption (else one model for all)
    whole_budget: bool = False  # fine-tune for AR2's T·(N+M) steps (the "same epochs" comparison)
    summary: str = ""  # what it trains, for the report (after its budget)

    def repair(self, repair):
        """The entry's AR2 settings: the benchmark's, with M = N + M for the whole-budget fine-tuning."""
        if self.whole_budget:
            return dataclasses.replace(repair, finetune_steps=repair.refine_steps + repair.finetune_steps)
        return repair

    def config(self, base, corruption):
        """The `TrainConfig` of this entry's run for `corruption` ("all" for a single model)."""
        return dataclasses.replace(base, method=self.method, corruption=corruption, repair=self.repair(base.repair))

    def schedule(self, repair):
        """The schedule its runs train with under the benchmark's `repair` settings (None: no training)."""
        return None if self.method is None else get_method(self.method).schedule(self.repair(repair))


BENCHMARK_ENTRIES = {entry.key: entry for entry in (
    BenchmarkEntry("vanilla", "vanilla"),
    BenchmarkEntry("finetune", "fine-tune (same phases)", "finetune", per_corruption=True,
                   summary="fine-tuning on clean + corrupted images for T·M steps, the paper's ablation"),
    BenchmarkEntry("finetune_epochs", "fine-tune (same epochs)", "finetune", per_corruption=True,
                   whole_budget=True, summary="fine-tuning on clean + corrupted images for T·(N+M) steps, "
                                              "AR2's whole budget"),
    BenchmarkEntry("augmix", "AugMix", "augmix",
                   summary="clean + two AugMix views with the JSD loss (λ=12) for T·(N+M) steps, never seeing a test "
                           "corruption"),
    BenchmarkEntry("ar2", "AR2", "ar2", per_corruption=True,
                   summary="T iterations of N refinement then M fine-tuning steps"),
    BenchmarkEntry("unified", "AR2 unified (all 15)", "ar2",
                   summary="AR2 with each batch drawing one of the 15 corruptions, uniformly, from its stateless seed"),
    BenchmarkEntry("bn_adapt", "BN adaptation", "bn-adapt", per_corruption=True,
                   summary="BatchNorm statistics re-estimated on the corrupted training images, one pass, no "
                           "gradient step (Schneider et al., NeurIPS 2020)"),
    BenchmarkEntry("tent", "TENT (test-time)", adaptation="tent",
                   summary="the pretrained model adapted on each test set as it is evaluated: one Adam step (lr "
                           "1e-3) on the prediction entropy per test batch, BatchNorm scale and offset only, reset "
                           "for every test set (Wang et al., ICLR 2021); not a trained model"),
)}


def steps_text(count: int, unit: str) -> str:
    """'8 epochs', '1 epoch', '320 batches'."""
    return f"{count} {unit}" + ("" if count == 1 else "es" if unit == "batch" else "s")


def budget(key: str, repair) -> str:
    """An entry's training budget in the schedule's unit: '8 epochs', '320 batches', '0 epochs' (vanilla);
    a test-time adaptation's: '1 step per test batch'."""
    if BENCHMARK_ENTRIES[key].adaptation:
        return "1 step per test batch"
    schedule = BENCHMARK_ENTRIES[key].schedule(repair)
    return steps_text(schedule.total_steps if schedule else 0, repair.step_unit)
