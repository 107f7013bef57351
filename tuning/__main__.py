"""`python -m tuning`: search AR2's k, alpha, N, M and learning rates with Keras Tuner.

Examples:
    python -m tuning --max-trials 4 --out runs/tune_demo            # offline demo data, minutes on a CPU
    python -m tuning --dataset cifar10 --data-dir ../shared/data/cifar10/cifar10_jpeg_bytes_official_order.npz \\
        --model ../shared/models/cifar10_resnet20v1.h5 --preprocessing unit --corruption gaussian_noise \\
        --train-size 3000 --val-size 1000 --tuner bayesian --max-trials 12 --epochs-budget 4 --out runs/tune_gn
Re-running the same command resumes the search; raising --max-trials extends it.
"""

import argparse
import sys

from ar2_tf.choices import DATASETS, TUNERS
from ar2_tf.cli import HelpFormatter, add_model_loading_flags, command, console_script, parse_int_list, start_tensorflow
from ar2_tf.data.preprocessing_spec import preprocessing_spec
from ar2_tf.runs.config import resolve
from ar2_tf.runs.plan import plan_run
from tuning.config import SearchConfig

# TensorFlow-free: --help and flag errors answer before TensorFlow starts (main).


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m tuning", description=__doc__.split("\n")[0],
                                     formatter_class=HelpFormatter)
    data = parser.add_argument_group("data and model")
    data.add_argument("--dataset", help=f"one of {', '.join(DATASETS)} (default: demo)")
    data.add_argument("--data-dir", help="folder or .npz file with the data (default: tfds download / demo)")
    data.add_argument("--train-size", type=int, help="training images per trial (seeded subset; default: all "
                                                     "but the validation images)")
    data.add_argument("--val-size", type=int, default=1000, help="validation images carved from the training split")
    data.add_argument("--image-size", type=int, help="resize images to this square size")
    data.add_argument("--batch-size", type=int, help="images per batch (default by dataset: 64 demo, 128 CIFAR, 32 "
                                                     "ImageNet)")
    data.add_argument("--model", help="a pretrained .keras/.h5 file or an architecture (default by dataset, as in "
                                       "python -m ar2_tf.train)")
    data.add_argument("--weights", help="resnet50 only: imagenet (download) or none")
    data.add_argument("--pretrain-epochs", type=int, help="vanilla pre-training for an architecture name")
    data.add_argument("--preprocessing", help="unit (x/255), caffe, tf, torch, none, or meanstd with --mean/--std; "
                                              "default by model, as in python -m ar2_tf.train")
    data.add_argument("--mean", help="meanstd: per-channel mean in pixel units 0-255, R,G,B or one number")
    data.add_argument("--std", help="meanstd: per-channel standard deviation in pixel units 0-255, R,G,B or one "
                                    "number")
    data.add_argument("--feature-layer", help="override: layer whose output is the last feature map")
    data.add_argument("--dense-layer", help="override: the class Dense layer")
    add_model_loading_flags(data)
    data.add_argument("--corruption", help="the corruption to repair for (default: gaussian_noise)")
    data.add_argument("--severity", help="training severity, 1-5 (default: 3)")
    data.add_argument("--corruption-params", help="cifar or imagenet parameter set (default by dataset)")
    data.add_argument("--corruption-backend", help="native (default) or reference (imagecorruptions)")
    search = parser.add_argument_group("search")
    search.add_argument("--tuner", default="random", help=f"one of {', '.join(TUNERS)}")
    search.add_argument("--max-trials", type=int, default=10, help="trials in all (hyperband: unused)")
    search.add_argument("--epochs-budget", type=int, default=2,
                        help="training steps (epochs) per trial; T = budget // (N + M); hyperband's max_epochs")
    search.add_argument("--max-clean-drop", type=float, default=2.0,
                        help="clean-accuracy drop (points) allowed before a trial is penalised")
    search.add_argument("--val-severities", default="1-5", help="severities averaged in the objective")
    search.add_argument("--fix", dest="fixed", action="append", default=[], metavar="NAME=VALUE",
                        help="take a hyperparameter out of the search, e.g. --fix k=3 --fix alpha=1.0 (repeatable)")
    search.add_argument("--hyperband-factor", type=int, default=3, help="hyperband's reduction factor")
    search.add_argument("--no-compare-defaults", action="store_true",
                        help="skip scoring the paper's k=3, alpha=1, N=M=1 under the same budget")
    run = parser.add_argument_group("run")
    run.add_argument("--out", help="search folder (default: runs/tune_<dataset>_<corruption>)")
    run.add_argument("--seed", type=int, help="seeds the subsets, the validation split and the tuner")
    run.add_argument("--force", action="store_true", help="discard a different search found in --out")
    run.add_argument("--verbose", type=int, default=1, help="0 silent, 1 progress bars, 2 one line per epoch")
    return parser


def search_from_args(args):
    names = ("data_dir", "train_size", "image_size", "batch_size", "model", "weights", "pretrain_epochs",
             "preprocessing", "feature_layer", "dense_layer", "corruption", "severity", "corruption_params",
             "corruption_backend", "seed")
    fields = {name: getattr(args, name) for name in names if getattr(args, name) is not None}
    if args.unsafe_model_loading:
        fields["unsafe_model_loading"] = True
    spec = preprocessing_spec(args.preprocessing, args.mean, args.std)  # meanstd -> "meanstd:MEAN:STD"
    if spec is not None:
        fields["preprocessing"] = spec
    train = resolve(args.dataset, None, None, fields)  # the same defaults as python -m ar2_tf.train
    return SearchConfig(train=train, tuner=args.tuner, max_trials=args.max_trials, val_size=args.val_size,
                        epochs_budget=args.epochs_budget, max_clean_drop=args.max_clean_drop,
                        val_severities=tuple(parse_int_list(args.val_severities, "val_severities")),
                        fixed=tuple(args.fixed), hyperband_factor=args.hyperband_factor,
                        compare_defaults=not args.no_compare_defaults)


@command(build_parser)
def main(argv=None):
    args = build_parser().parse_args(argv)
    search = search_from_args(args)
    plan = plan_run(search.train)  # its config checked before TensorFlow starts
    start_tensorflow(args.custom_objects)
    from tuning.search import run_search

    out = args.out or f"runs/tune_{search.train.dataset}_{search.train.corruption}"
    run_search(search, out, force=args.force, verbose=args.verbose, plan=plan)


console = console_script(main)  # the installed command (pyproject.toml [project.scripts])

if __name__ == "__main__":
    sys.exit(console())
