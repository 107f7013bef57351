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
import sys

from ar2_tf.cli import command, console_script, start_tensorflow
from ar2_tf.runs.run_folder import MODEL_FILES


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m ar2_tf.benchmark_view", description=__doc__.split("\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__,
                                     allow_abbrev=False)
    parser.add_argument("--benchmark", dest="benchmark_dir", required=True,
                        help="the --out folder of python -m ar2_tf.benchmark")
    parser.add_argument("--evaluation", dest="evaluation_dir", required=True,
                        help="the --out folder of python -m ar2_tf.evaluate on its runs")
    parser.add_argument("--out", help="tables folder (default: EVALUATION/benchmark_tables)")
    parser.add_argument("--weights", choices=tuple(MODEL_FILES), default="kept",
                        help="which model of each run the evaluation measured: kept (model.keras, the phase the "
                        "clean-error guard chose) or last-phase (last_phase.keras, the last epoch's weights, "
                        "written by scripts/last_phase.py)")
    return parser


@command(build_parser)
def main(argv=None):
    args = build_parser().parse_args(argv)
    start_tensorflow()
    from ar2_tf.benchmarking.view import write_view
    from ar2_tf.evaluation import tables

    view = write_view(args.benchmark_dir, args.evaluation_dir, args.out, args.weights)
    table = view["tables"]["table1_repaired"]
    print(tables.to_markdown(table["title"], table["header"], table["rows"]))
    if view["missing_runs"]:
        print(f"not in this evaluation: {', '.join(view['missing_runs'])}")
    print(f"tables: {view['tables_dir']}")


console = console_script(main)  # the installed command (pyproject.toml [project.scripts])

if __name__ == "__main__":
    sys.exit(console())
