"""`python -m ar2_tf.benchmark`: every repair method from one pretrained model, trained and measured alike.

Methods (`--methods`, default all):
    vanilla          the pretrained model itself (always evaluated: it is the baseline)
    finetune         fine-tuning alone, T·M epochs: as many fine-tuning phases as AR2 (the paper's ablation)
    finetune_epochs  fine-tuning alone, T·(N+M) epochs: as many epochs as AR2
    augmix           AugMix + JSD loss, T·(N+M) epochs, one model for every corruption
    ar2              AR2, one model per corruption in --corruptions
    unified          AR2 on all 15 corruptions (one drawn per batch), one model
    bn_adapt         BatchNorm statistics re-estimated on the corrupted training images, one pass per corruption
    tent             TENT: the pretrained model adapted on each test set as it is evaluated; every fine-tuned and
                     AR2 model is evaluated under TENT too (rows "AR2 + TENT", ...), so the tables answer
                     "repair, then also adapt at test time?"

Every run goes through `ar2_tf.runs.repair_run.run_repair` into OUT/runs/<method>_<corruption>
(resumable: a finished run is reused, an interrupted one resumes); then every
model is evaluated on the same corrupted test sets (`ar2_tf.evaluation.suite`,
all 15 corruptions at severities 1-5 unless --eval-corruptions/--severities say
otherwise) and OUT receives the tables (`ar2_tf.benchmarking.report`; offtarget.*: each
per-corruption model's mean CE change on the corruptions it was not repaired for), report.md
and benchmark.json (command, config, package versions, seeds, wall times).

Every flag of `python -m ar2_tf.train` except --method, --corruption and --out
is passed through (data, model, schedule, learning rates, seed).

Example (the committed CIFAR-10 report, see docs/results/benchmark.md):
    python -m ar2_tf.benchmark --dataset cifar10 --model ../shared/models/cifar10_resnet20v1.h5 \\
        --data-dir ../shared/data/cifar10/cifar10_jpeg_bytes_official_order.npz --train-size 5000 \\
        --eval-data-dir ../shared/data/cifar10/cifar10_exact_official_subset.npz \\
        --corruptions gaussian_noise,defocus_blur,fog,contrast,jpeg_compression -T 4 -N 1 -M 1 \\
        --out results/cifar10_benchmark
"""

import argparse
import os
import shlex
import sys

from ar2_tf.cli import command, console_script, parse_int_list, start_tensorflow
from ar2_tf.errors import UserError
from ar2_tf.evaluation.tables import to_markdown
from ar2_tf.runs.methods import BENCHMARK_ENTRIES  # the --methods choices, in table order
from ar2_tf.runs.plan import plan_run
from ar2_tf.train import build_parser as train_parser  # its other flags are training's


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m ar2_tf.benchmark", description=__doc__.split("\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__,
                                     allow_abbrev=False)
    parser.add_argument("--methods", default=",".join(BENCHMARK_ENTRIES),
                        help="comma-separated, from: " + ", ".join(BENCHMARK_ENTRIES))
    parser.add_argument("--corruptions", default="all", help="repaired-for corruptions of finetune*/ar2: 'all' or a "
                                                             "comma-separated list")
    parser.add_argument("--eval-corruptions", default="all", help="evaluated corruptions (default: all 15)")
    parser.add_argument("--severities", default="1-5", help="evaluated severities, e.g. 1-5")
    parser.add_argument("--cache-dir", help="opt-in cache of generated corrupted test sets (e.g. ~/.cache/ar2_tf/"
                                            "corrupted_sets); default: stream them, writing nothing")
    parser.add_argument("--seeds", help="train every run once per seed, e.g. 0,1,2: tables give mean ± std and "
                                        "AR2 − fine-tuning on target CE, clean error and off-target CE change "
                                        "(with tent: AR2 + TENT against AR2, TENT and fine-tuning + TENT) with a "
                                        "95%% interval (default: --seed alone)")
    parser.add_argument("--out", required=True, help="benchmark folder (runs/, evaluation/, tables, report.md)")
    return parser


def parse(argv):
    """(benchmark flags, `python -m ar2_tf.train` flags, the base config) of a command line: the benchmark's
    own flags, and every other one as training takes it. TensorFlow-free; `main` checks the config, once, in its
    plan (`plan_run`)."""
    from ar2_tf import train

    args, rest = build_parser().parse_known_args(argv)
    clashing = [token for token in rest if token.split("=")[0] in ("--method", "--corruption", "--out")]
    if clashing:
        raise UserError(f"{clashing[0].split('=')[0]} is a python -m ar2_tf.train flag; the benchmark takes "
                        "--methods, --corruptions and one --out.")
    train_args = train.build_parser().parse_args(rest)
    return args, train_args, train.config_from_args(train_args)


@command(build_parser, train_parser)
def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    args, train_args, config = parse(argv)
    cache_dir = None if args.cache_dir is None or args.cache_dir.lower() == "none" else args.cache_dir
    static = config.corruption_mode == "static"  # its shards are checked with TensorFlow: started first
    if static:
        start_tensorflow(train_args.custom_objects)
    base = plan_run(config)  # the shared config, checked once, before TensorFlow starts; the runs follow it
    if not static:
        start_tensorflow(train_args.custom_objects)
    from ar2_tf.benchmarking.run import run_benchmark
    from ar2_tf.evaluation.suite import parse_corruptions

    record = run_benchmark(base, methods=tuple(m.strip() for m in args.methods.split(",") if m.strip()),
                           corruptions=parse_corruptions(args.corruptions),
                           evaluated=parse_corruptions(args.eval_corruptions),
                           severities=parse_int_list(args.severities, "severities"), out=args.out,
                           cache_dir=cache_dir, strategy=train_args.strategy,
                           command="python -m ar2_tf.benchmark " + shlex.join(argv), verbose=train_args.verbose,
                           seeds=parse_int_list(args.seeds, "seeds") if args.seeds else None)
    print("\n" + to_markdown(*[record["tables"]["table1_repaired"][k] for k in ("title", "header", "rows")]))
    print(f"report: {os.path.join(args.out, 'report.md')} (wall time this call: "
          f"{record['wall_seconds']['this_call']:.0f} s)")


console = console_script(main)  # the installed command (pyproject.toml [project.scripts])

if __name__ == "__main__":
    sys.exit(console())
