"""`python -m export`: repaired run folders -> versioned SavedModels and a TF Serving models.config.

Example:
    python -m export --run runs/gaussian_noise --run runs/unified --out serving/
"""

import argparse
import sys

from ar2_tf.cli import HelpFormatter, add_model_loading_flags, command, console_script, start_tensorflow
from export.limits import MAX_BATCH_SIZE, MAX_IMAGE_SIZE


def build_parser():
    parser = argparse.ArgumentParser(prog="python -m export", description=__doc__.splitlines()[0],
                                     formatter_class=HelpFormatter)
    parser.add_argument("--run", dest="run_paths", action="append", required=True, metavar="RUN_FOLDER",
                        help="a finished run folder (python -m ar2_tf.train --out); repeat for several")
    parser.add_argument("--out", required=True, help="the serving folder: <out>/<model_name>/<version>/")
    parser.add_argument("--name", dest="names", action="append",
                        help="model name per --run (default: METHOD_DATASET_CORRUPTION)")
    parser.add_argument("--version", type=int, help="version to write (default: one more than the newest)")
    parser.add_argument("--force", action="store_true", help="with --version: replace that version if it exists")
    parser.add_argument("--max-image-size", type=int, default=MAX_IMAGE_SIZE,
                        help="largest image height/width a request may send; larger ones are rejected")
    parser.add_argument("--max-batch-size", type=int, default=MAX_BATCH_SIZE, help="most images per request")
    parser.add_argument("--base-path", help="the --out folder as TF Serving sees it, for models.config "
                                            "(e.g. /models in docker; default: the absolute --out)")
    parser.add_argument("--verify-images", metavar="FILE.npz",
                        help="uint8 images (x_test or images) to verify with (default: the run's test split)")
    parser.add_argument("--allow-clean-drop", action="store_true",
                        help="export a run whose clean test error rose more than its --max-clean-drop")
    add_model_loading_flags(parser)
    return parser


@command(build_parser)
def main(argv=None):
    args = build_parser().parse_args(argv)
    start_tensorflow(args.custom_objects)
    from export.exporter import ExportOptions, export_runs

    options = ExportOptions(version=args.version, force=args.force, max_image_size=args.max_image_size,
                            max_batch_size=args.max_batch_size, base_path=args.base_path,
                            verify_images=args.verify_images, unsafe_model_loading=bool(args.unsafe_model_loading),
                            allow_clean_drop=args.allow_clean_drop)
    export_runs(args.run_paths, args.out, names=args.names, options=options)


console = console_script(main)  # the installed command (pyproject.toml [project.scripts])

if __name__ == "__main__":
    sys.exit(console())
