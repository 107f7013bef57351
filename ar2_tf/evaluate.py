"""`python -m ar2_tf.evaluate`: corruption-robustness benchmark of Keras classifiers (CE, mCE, tables).

Examples:
    python -m ar2_tf.evaluate --model ../shared/models/cifar10_resnet20v1.h5 --dataset cifar10 \\
        --data-dir ../shared/data/cifar10/cifar10_exact_official_subset.npz --out results/vanilla_eval
    python -m ar2_tf.evaluate --model runs/ar2_fog --model runs/ft_fog --baseline vanilla.h5 --out results/fog
    python -m ar2_tf.evaluate --model m.h5 --dataset cifar10 --data-dir cifar10/ --corrupted-dir CIFAR-10-C/
    python -m ar2_tf.evaluate --model m.h5 --dataset cifar10 --cache-dir ~/.cache/ar2_tf/corrupted_sets
    python -m ar2_tf.evaluate --model m.h5 --tent m.h5 --dataset cifar10 --out results/tent
    python -m ar2_tf.evaluate --model m.h5 --tent m.h5 --dataset cifar10 --report reports/m
    python -m ar2_tf.evaluate transfer --runs runs/a runs/b runs/c --baseline vanilla.h5 --out results/transfer
"""

import argparse
import sys

from ar2_tf.cli import add_model_loading_flags, command, console_script, parse_int_list, start_tensorflow
from ar2_tf.data.preprocessing_spec import preprocessing_spec
from ar2_tf.errors import UserError


def _add_data_flags(parser, cache_budget=True):
    data = parser.add_argument_group("data")
    data.add_argument("--dataset", help="demo, cifar10, cifar100 or imagenet (default: a run folder's)")
    data.add_argument("--data-dir", help="clean data: folder or .npz (default: tfds / a run folder's)")
    data.add_argument("--corrupted-dir", help="official corrupted sets: a CIFAR-10-C/-100-C folder, an ImageNet-C "
                                              "folder, or 'tfds' ('tfds:DIR'); default: generate them (streamed)")
    data.add_argument("--corruptions", default=None, help="'all' (the 15) or a comma-separated list")
    data.add_argument("--severities", default="1-5", help="e.g. 1-5 or 1,3,5")
    data.add_argument("--test-size", type=int, help="seeded subset of the clean test split (first N per severity "
                                                    "of an official set)")
    data.add_argument("--val-size", type=int, help="test images left out as the runs' validation images (default: "
                                                   "what the first run folder on this data set aside; 0: none)")
    data.add_argument("--image-size", type=int, help="resize images to this square size")
    data.add_argument("--corruption-params", help="parameters of generated sets: cifar or imagenet "
                                                  "(default by dataset)")
    data.add_argument("--corruption-backend", default="native", help="native or reference (imagecorruptions)")
    data.add_argument("--seed", type=int, default=0, help="seed of the test subset and the corruption noise")
    data.add_argument("--batch-size", type=int, default=256)
    data.add_argument("--cache-dir", help="cache generated corrupted sets as uint8 arrays in this folder (e.g. "
                                          "~/.cache/ar2_tf/corrupted_sets) and reuse them on later runs; default "
                                          "(or 'none'): stream them, corrupt -> preprocess -> infer, nothing "
                                          "written")
    if cache_budget:  # run_transfer takes the library's default budget
        data.add_argument("--cache-budget-gb", type=float,
                          help="with --cache-dir: refuse to cache the sets of an evaluation that would take more "
                               "disk than this (default 20 GB; ImageNet's 50,000 validation images take 7.5 GB per "
                               "set)")
    parser.add_argument("--verbose", type=int, default=1, help="0 silent, 1 progress bars")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m ar2_tf.evaluate", description=__doc__.split("\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--model", action="append", default=[],
                        help="a .keras/.h5 file or a run folder; repeat for several models")
    parser.add_argument("--tent", action="append", default=[],
                        help="a model (file or run folder) evaluated under TENT test-time adaptation: one Adam step "
                             "(lr 1e-3) on the prediction entropy per test batch, BatchNorm scale/offset only, reset "
                             "for every test set; repeatable")
    parser.add_argument("--baseline", help="model or run folder to normalise CE by (e.g. the vanilla model)")
    parser.add_argument("--preprocessing", help="unit, caffe, tf, torch, none, or meanstd with --mean/--std "
                                                "(default: the run's; for a model file none if it starts with its "
                                                "own Rescaling/Normalization layers, else by dataset: caffe for "
                                                "imagenet, unit otherwise)")
    parser.add_argument("--mean", help="meanstd: per-channel mean in pixel units 0-255, R,G,B or one number")
    parser.add_argument("--std", help="meanstd: per-channel standard deviation in pixel units 0-255, R,G,B or "
                                      "one number")
    parser.add_argument("--out", help="results folder (evaluation.json, tables)")
    parser.add_argument("--report", metavar="DIR",
                        help="also write a robustness report: DIR/index.md (clean error, CE per corruption, error "
                             "against severity, mCE, mean corruption accuracy, CAM panel) with its PNGs")
    add_model_loading_flags(parser)
    _add_data_flags(parser)
    return parser


def build_transfer_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m ar2_tf.evaluate transfer",
                                     description="Transfer matrix (paper Figure 3): CE change of each "
                                                 "per-corruption repaired model vs the vanilla model.")
    parser.add_argument("--runs", nargs="+", required=True, help="run folders, one per repaired-for corruption")
    parser.add_argument("--baseline", required=True, help="the vanilla model (file or run folder)")
    parser.add_argument("--out", required=True, help="folder for transfer.{csv,json,md,png} and the evaluation")
    add_model_loading_flags(parser)
    _add_data_flags(parser, cache_budget=False)
    return parser


def _setup(args, corruptions_default):
    from ar2_tf.evaluation.suite import EvaluationSetup, parse_corruptions

    corruptions = corruptions_default if args.corruptions is None else parse_corruptions(args.corruptions)
    return EvaluationSetup(dataset=args.dataset, data_dir=args.data_dir, corrupted_dir=args.corrupted_dir,
                           corruptions=corruptions, severities=tuple(parse_int_list(args.severities, "severities")),
                           test_size=args.test_size, image_size=args.image_size, params=args.corruption_params,
                           backend=args.corruption_backend, seed=args.seed, batch_size=args.batch_size,
                           validation=args.val_size)


def _cache_budget_gb(args):
    from ar2_tf.evaluation.generated_sets import DEFAULT_CACHE_BUDGET_GB

    return DEFAULT_CACHE_BUDGET_GB if args.cache_budget_gb is None else args.cache_budget_gb


def _cache_dir(args):
    """The --cache-dir folder, or None (the default, and 'none'): stream generated sets."""
    if args.cache_dir is None or args.cache_dir.lower() == "none":
        return None
    return args.cache_dir


@command(build_parser, build_transfer_parser)
def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["transfer"]:
        return transfer_main(argv[1:])
    args = build_parser().parse_args(argv)
    if not args.model and not args.tent:
        raise UserError("nothing to evaluate: pass --model (a .keras/.h5 file or a run folder) or --tent.")
    preprocessing = preprocessing_spec(args.preprocessing, args.mean, args.std)
    if args.report:
        from ar2_tf.evaluation.report_page import check_report_folder

        check_report_folder(args.report)  # before the evaluation, which may take hours
    start_tensorflow(args.custom_objects)
    from ar2_tf.evaluation.suite import parse_corruptions, run_evaluation
    from ar2_tf.evaluation.tables import table1, to_markdown
    from ar2_tf.runs.evaluated_runs import model_spec

    setup = _setup(args, parse_corruptions("all"))
    specs, tent = [model_spec(path) for path in args.model], [model_spec(path) for path in args.tent]
    baseline = model_spec(args.baseline) if args.baseline else None
    results = run_evaluation(specs, setup, baseline=baseline, tent=tent, preprocessing=preprocessing,
                             out=args.out, cache_dir=_cache_dir(args), cache_budget_gb=_cache_budget_gb(args),
                             unsafe_model_loading=bool(args.unsafe_model_loading), verbose=args.verbose)
    corruptions = list(results["setup"]["corruptions"])
    print()
    print(to_markdown(*table1(results, corruptions, title="unnormalised CE (mean error % over severities)")))
    for label, entry in results["models"].items():
        summary = entry["summary"]
        parts = [f"clean {summary['clean_error']:.2f}", f"mCE {_fmt(summary['unnormalized']['mce'])} (unnormalised)"]
        for section in ("baseline", "alexnet"):
            if section in summary:
                parts.append(f"mCE {_fmt(summary[section]['mce'])} / relative mCE "
                             f"{_fmt(summary[section]['relative_mce'])} (vs {summary[section]['reference']})")
        print(f"{label}: " + ", ".join(parts))
    if args.out:
        print(f"results in {args.out}")
    if args.report:
        _write_report(args, results, argv)


def _write_report(args, results, argv):
    """The report of the evaluation; if it fails, one line says so and where the numbers already are."""
    import shlex

    from ar2_tf.errors import first_line
    from ar2_tf.evaluation.report import evaluation_report

    try:
        page = evaluation_report(args.report, results, command="python -m ar2_tf.evaluate " + shlex.join(argv),
                                 unsafe_model_loading=bool(args.unsafe_model_loading))
    except Exception as error:  # whatever failed, the numbers measured above are kept
        kept = f"{args.out}/evaluation.json and printed above" if args.out else "printed above"
        raise UserError(f"the report in {args.report} could not be written ({type(error).__name__}: "
                        f"{first_line(error)}); the evaluation's numbers are in {kept}.") from None
    print(f"report in {page}")


def transfer_main(argv):
    args = build_transfer_parser().parse_args(argv)
    start_tensorflow(args.custom_objects)
    from ar2_tf.evaluation.tables import to_markdown
    from ar2_tf.evaluation.transfer import run_transfer
    from ar2_tf.runs.evaluated_runs import model_spec

    specs = [model_spec(path) for path in args.runs]
    result = run_transfer(specs, model_spec(args.baseline), _setup(args, None), out=args.out, cache_dir=_cache_dir(args),
                          unsafe_model_loading=bool(args.unsafe_model_loading), verbose=args.verbose)
    header = ["evaluated \\ repaired for", *result["columns"]]
    print(to_markdown("CE change vs vanilla (points)", header,
                      [[r, *line] for r, line in zip(result["rows"], result["delta_ce"])], digits=2))
    counts = result["counts"]
    print(f"{counts['worse']} of {counts['off_diagonal_cells']} off-diagonal cells got worse; mean "
          f"{_fmt(counts['mean_worse'])}, max {_fmt(counts['max_worse'])} points. Results in {args.out}")


def _fmt(value):
    return "–" if value is None else f"{value:.2f}"


console = console_script(main)  # the installed command (pyproject.toml [project.scripts])

if __name__ == "__main__":
    sys.exit(console())
