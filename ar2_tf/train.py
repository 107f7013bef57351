"""`python -m ar2_tf.train`: repair a pretrained classifier for one corruption with AR2.

Examples:
    python -m ar2_tf.train                                   # offline demo, a few minutes on a CPU
    python -m ar2_tf.train --dataset cifar10 --model resnet20.h5 --corruption fog --preset cifar-paper
    python -m ar2_tf.train --dataset imagenet --data-dir /data/imagenet --model resnet50 --corruption snow
"""

import argparse
import dataclasses
import sys

from ar2_tf.choices import DATASETS, STRATEGIES
from ar2_tf.cli import HelpFormatter, add_model_loading_flags, command, console_script, start_tensorflow
from ar2_tf.data.preprocessing_spec import preprocessing_spec
from ar2_tf.runs.config import PRESETS, RepairConfig, TrainConfig, load_json, resolve
from ar2_tf.runs.methods import METHODS
from ar2_tf.runs.plan import default_out, plan_run

# TensorFlow-free up to here: --help and flag errors answer before main starts TensorFlow.
# Every flag's dest is the config field it sets, which is how the library's errors name it (`ar2_tf.errors`).


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m ar2_tf.train", description=__doc__.split("\n")[0],
                                     formatter_class=HelpFormatter)
    data = parser.add_argument_group("data")
    data.add_argument("--dataset", help=f"one of {', '.join(DATASETS)} (default: demo)")
    data.add_argument("--data-dir", help="folder or .npz file with the data (default: tfds download / demo)")
    data.add_argument("--eval-data-dir", help="another source for the test split (e.g. exact-pixel test images)")
    data.add_argument("--train-size", type=int, help="seeded random subset of the training split")
    data.add_argument("--test-size", type=int, help="seeded random subset of the test split")
    data.add_argument("--strict-images", action="store_true", default=None,
                      help="refuse image folders holding files that do not decode (corrupt, truncated, empty, "
                           "unreadable, not images) instead of skipping them with a warning")
    data.add_argument("--val-data-dir", help="your own held-out validation images, read as --eval-data-dir is (its "
                                             "test split), to choose the kept phase on")
    data.add_argument("--val-size", type=int, help="validation images that choose the kept phase: of the test split "
                                                   "where the data has one (default: half, at most 1,000; the rest "
                                                   "tests), else of the training split (10%%, at most 1,000); "
                                                   "0: none, keep the last phase")
    data.add_argument("--max-clean-drop", type=float, help="points of clean-error rise on the validation images "
                                                           "(paired estimate) a kept phase may cost (default: 1.0)")
    data.add_argument("--image-size", type=int, help="resize images to this square size")
    data.add_argument("--batch-size", type=int, help="images per batch (default by dataset: 64 demo, 128 CIFAR, "
                                                     "32 ImageNet)")
    model = parser.add_argument_group("model")
    model.add_argument("--model", help="a .keras/.h5 file or an architecture: resnet8/20/32/34/50")
    model.add_argument("--weights", help="resnet50 only: imagenet (download) or none")
    model.add_argument("--pretrain-epochs", type=int, help="vanilla pre-training for an architecture without "
                                                           "weights")
    model.add_argument("--preprocessing", help="unit (x/255), caffe (ResNet-50), tf, torch, none, or meanstd with "
                                               "--mean/--std; default by model: none if it starts with its own "
                                               "Rescaling/Normalization layers, else by architecture or dataset")
    model.add_argument("--mean", help="meanstd: per-channel mean in pixel units 0-255, R,G,B or one number "
                                      "(e.g. 125.3,123,113.9)")
    model.add_argument("--std", help="meanstd: per-channel standard deviation in pixel units 0-255, R,G,B or one "
                                     "number (e.g. 63,62.1,66.7)")
    model.add_argument("--feature-layer", help="override: layer whose output is the last feature map")
    model.add_argument("--dense-layer", help="override: the class layer (Dense, or a linear 1x1 Conv2D)")
    add_model_loading_flags(model)
    repair = parser.add_argument_group("corruption and method")
    repair.add_argument("--corruption", help="the corruption to repair for (default: gaussian_noise), or all")
    repair.add_argument("--severity", help="training severity, 1-5 (default: 3)")
    repair.add_argument("--corruption-params", help="cifar or imagenet parameter set (default by dataset)")
    repair.add_argument("--corruption-backend", help="native (default) or reference (imagecorruptions)")
    repair.add_argument("--method", help=f"one of {', '.join(METHODS)} (default: ar2)")
    repair.add_argument("--corruption-mode", help="dynamic (corrupt on the fly, default) or static (precomputed "
                                                  "shards, the paper's ImageNet setting)")
    repair.add_argument("--precomputed-dir", help="static mode: shards from python -m ar2_tf.precompute")
    repair.add_argument("--preset", help=f"AR2 hyperparameters: {', '.join(PRESETS)} (default by dataset)")
    repair.add_argument("--config", help="JSON file of config fields (e.g. a tuning search's best.json)")
    repair.add_argument("-k", "--k", type=int, help="classes per view in Eq. 2's class set")
    repair.add_argument("--alpha", type=float, help="weight of the corrupted-view term of Eq. 2")
    repair.add_argument("-T", "--iterations", type=int, help="outer iterations T")
    repair.add_argument("-N", "--refine-steps", type=int, help="refinement steps per iteration N")
    repair.add_argument("-M", "--finetune-steps", type=int, help="fine-tuning steps per iteration M")
    repair.add_argument("--step-unit", help="epoch or batch: what one step of N and M is")
    repair.add_argument("--cam-normalization", help="l2 or none")
    repair.add_argument("--topk-from", help="repaired or reference: whose clean prediction gives topk(x)")
    repair.add_argument("--attention", help="Eq. 2's maps: auto (default: exact CAMs when the head is linear, "
                                            "else Grad-CAM), cam or gradcam")
    repair.add_argument("--refine-lr", dest="refine_learning_rate", type=float, help="SGD learning rate of refinement")
    repair.add_argument("--finetune-lr", dest="finetune_learning_rate", type=float,
                        help="SGD learning rate of fine-tuning")
    repair.add_argument("--momentum", type=float, help="SGD momentum")
    run = parser.add_argument_group("run")
    run.add_argument("--out", help="run folder (default: runs/<dataset>_<method>_<corruption>)")
    run.add_argument("--seed", type=int, help="seed of data order, corruption noise and subsets (default: 0)")
    run.add_argument("--force", action="store_true", help="discard a different run found in --out")
    run.add_argument("--strategy", default="auto", help=f"one of {', '.join(STRATEGIES)}")
    run.add_argument("--mixed-precision", help="mixed_float16 or mixed_bfloat16 (GPUs; loss scaling for float16)")
    run.add_argument("--jit-compile", action="store_true", default=None, help="XLA-compile the train steps (default: Keras "
                                                                 "decides, on with a GPU)")
    run.add_argument("--deterministic", action="store_true",
                     help="deterministic TensorFlow ops (bit-exact resume; slower)")
    run.add_argument("--verbose", type=int, default=1, help="Keras verbosity: 0 silent, 1 bars, 2 lines")
    return parser


def config_from_args(args) -> TrainConfig:
    """The run's config: `ar2_tf.runs.config.resolve` of the --config file and the flags given."""
    loaded = load_json(args.config) if args.config else {}
    fields = {field.name: getattr(args, field.name) for field in dataclasses.fields(TrainConfig)
              if field.name != "repair" and getattr(args, field.name, None) is not None}
    repair_fields = {field.name: getattr(args, field.name) for field in dataclasses.fields(RepairConfig)
                     if getattr(args, field.name) is not None}
    spec = preprocessing_spec(args.preprocessing, args.mean, args.std)  # meanstd -> "meanstd:MEAN:STD"
    if spec is not None:
        fields["preprocessing"] = spec
    return resolve(args.dataset, args.preset, loaded, fields, repair_fields)


@command(build_parser)
def main(argv=None):
    args = build_parser().parse_args(argv)
    config = config_from_args(args)
    static = config.corruption_mode == "static"  # its shards are checked with TensorFlow: started first
    if static:
        start_tensorflow(args.custom_objects)
    out = args.out or default_out(config)
    plan = plan_run(config, out)  # the run's config checked, once, and resolved
    if not static:
        start_tensorflow(args.custom_objects)
    # Before importing the training code: a multi-worker strategy must start before any TF op runs.
    from ar2_tf.runs.distribution import get_strategy

    strategy = get_strategy(args.strategy)
    from ar2_tf.runs.repair_run import run_repair

    report = run_repair(plan, force=args.force, strategy=strategy, deterministic=args.deterministic,
                        verbose=args.verbose)
    if report is not None:  # None: a non-chief worker of a multi-worker run
        print_summary(report, out)


def print_summary(report, out):
    from ar2_tf.errors import note
    from ar2_tf.runs.selection import breaks_clean_constraint, clean_rise, kept_description

    before, after = report["before"], report["after"]
    corruption = report["config"]["corruption"]
    print(f"\n{report['config']['method']} repair for {corruption} -> {out}")
    print(f"{'error (%)':<22}{'before':>8}{'after':>8}")
    mark = ""
    if breaks_clean_constraint(report):
        mark = (f"  <- clean error +{clean_rise(report):.2f} points, more than the allowed "
                f"{report['config'].get('max_clean_drop', 1.0):g} (--max-clean-drop)")
    print(f"{'clean':<22}{before['clean']:8.2f}{after['clean']:8.2f}{mark}")
    for severity in sorted(before["corrupted"]):
        label = f"{corruption} s{severity}"
        print(f"{label:<22}{before['corrupted'][severity]:8.2f}{after['corrupted'][severity]:8.2f}")
    print(f"{corruption + ' mean':<22}{before['mean_corrupted']:8.2f}{after['mean_corrupted']:8.2f}")
    if "validation_source" in report:
        from ar2_tf.data.holdout import describe

        note(describe(report["validation_source"]))
    note(kept_description(report))


console = console_script(main)  # the installed command (pyproject.toml [project.scripts])

if __name__ == "__main__":
    sys.exit(console())
