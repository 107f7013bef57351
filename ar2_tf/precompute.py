"""`python -m ar2_tf.precompute`: corrupt a training set once into TFRecord shards (the paper's static mode).

Examples:
    python -m ar2_tf.precompute --dataset imagenet --data-dir /data/imagenet --corruption fog --severity 3 \\
        --out shards/fog
    python -m ar2_tf.train --dataset imagenet --data-dir /data/imagenet --model resnet50 --corruption fog \\
        --corruption-mode static --precomputed-dir shards/fog

Re-running the same command resumes: finished shards are kept and skipped.
"""

import argparse
import sys

from ar2_tf.choices import DATASETS, ENCODINGS, PARAM_SETS, UNIFIED, check_corruption, default_params
from ar2_tf.cli import HelpFormatter, command, console_script, start_tensorflow
from ar2_tf.errors import check_choice, check_severity


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m ar2_tf.precompute", description=__doc__.split("\n")[0],
                                     formatter_class=HelpFormatter)
    parser.add_argument("--dataset", default="imagenet", help=f"one of {', '.join(DATASETS)}")
    parser.add_argument("--data-dir", help="image-folder tree or tfds manual folder (as for ar2_tf.train)")
    parser.add_argument("--train-size", type=int, help="seeded random subset of the training split")
    parser.add_argument("--image-size", type=int, help="square image size (ImageNet default: 224)")
    parser.add_argument("--corruption", required=True, help="the corruption ('all': one of the 15 per batch)")
    parser.add_argument("--severity", default="3", help="severity 1-5 (the paper: 3)")
    parser.add_argument("--corruption-params", help="cifar or imagenet parameter set (default by dataset)")
    parser.add_argument("--corruption-backend", default="native", help="native or reference (imagecorruptions)")
    parser.add_argument("--out", required=True, help="output folder of the shards")
    parser.add_argument("--shard-size", type=int, default=1024, help="records per shard")
    parser.add_argument("--batch-size", type=int, default=32, help="images corrupted per batched op")
    parser.add_argument("--encoding", default="png", help=f"one of {', '.join(ENCODINGS)}")
    parser.add_argument("--shuffle-buffer", type=int, default=4096, help="spreads classes over the shards")
    parser.add_argument("--seed", type=int, default=0, help="seed of the order and the corruption noise")
    parser.add_argument("--force", action="store_true", help="delete shards of a different set in --out")
    return parser


@command(build_parser)
def main(argv=None):
    args = build_parser().parse_args(argv)
    check_choice("dataset", args.dataset, DATASETS)
    severity = check_severity(args.severity)
    if args.corruption != UNIFIED:
        check_corruption(args.corruption)
    params = default_params(args.dataset, args.corruption_params)  # the run's rule
    check_choice("corruption params", params, PARAM_SETS)
    start_tensorflow()
    from ar2_tf.data.shards import write_shards
    from ar2_tf.data.sources import load_dataset

    source = load_dataset(args.dataset, args.data_dir, args.train_size, 1, args.image_size, args.seed)
    manifest = write_shards(
        source.train, args.out, num_examples=source.train_size, class_names=source.class_names,
        corruption=args.corruption, severity=severity, params=params, backend=args.corruption_backend,
        seed=args.seed, shard_size=args.shard_size, batch_size=args.batch_size, encoding=args.encoding,
        shuffle_buffer=args.shuffle_buffer, force=args.force,
        source={"dataset": args.dataset, "data_dir": args.data_dir, "train_size": args.train_size})
    print(f"{manifest['num_examples']} images in {manifest['num_shards']} shards in {args.out}")


console = console_script(main)  # the installed command (pyproject.toml [project.scripts])

if __name__ == "__main__":
    sys.exit(console())
