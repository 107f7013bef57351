"""Benchmark: the full corruption evaluation vs pure inference over the same number of images.

    python scripts/bench_evaluation.py                          # shared ResNet-20, 1,017 CIFAR-10 test images
    python scripts/bench_evaluation.py --corruptions fog,snow --severities 1-2

Steps: (1) generate and cache the corrupted sets (timed apart: once per
setup); (2) time the evaluation of cached sets exactly as `python -m
ar2_tf.evaluate` runs it (clean error + every corruption x severity, the
`benchmark_errors` path: memory-mapped arrays -> tf.data -> preprocessing ->
compiled forward pass + error count); (3) time pure inference: the same
compiled forward pass over the same number of images, already preprocessed
in memory. Prints both times and their ratio (target: <= 1.2).
"""

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from ar2_tf.quiet import quiet_start  # noqa: E402

quiet_start()  # TensorFlow's start-up noise off, as the commands do

import tensorflow as tf  # noqa: E402

from ar2_tf.cli import parse_int_list  # noqa: E402
from ar2_tf.data.preprocessing import get_preprocessor  # noqa: E402
from ar2_tf.data.sources import load_dataset  # noqa: E402
from ar2_tf.evaluation import corrupted_sets  # noqa: E402
from ar2_tf.evaluation.error_rates import benchmark_errors, clean_pipeline, error_rate  # noqa: E402
from ar2_tf.evaluation.multi_model import ErrorCounter  # noqa: E402
from ar2_tf.evaluation.suite import parse_corruptions  # noqa: E402
from ar2_tf.models import loading  # noqa: E402

SHARED = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared")


def pure_inference(classifier, images, labels, batch_size, repeats):
    """Seconds to run the compiled forward pass + error count over `repeats` passes of in-memory batches
    (BatchNorm folded, as the evaluation of the corrupted sets runs it)."""
    count = ErrorCounter(classifier, fold=True)
    batches = [(images[i:i + batch_size], labels[i:i + batch_size]) for i in range(0, len(labels), batch_size)]
    start = time.perf_counter()
    for _ in range(repeats):
        for x, y in batches:
            int(count(x, y)[0])  # the same host sync per batch as error_rate
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=os.path.join(SHARED, "models", "cifar10_resnet20v1.h5"))
    parser.add_argument("--dataset", default="cifar10")
    parser.add_argument("--data-dir", default=os.path.join(SHARED, "data", "cifar10",
                                                           "cifar10_exact_official_subset.npz"))
    parser.add_argument("--preprocessing", default="unit")
    parser.add_argument("--corruptions", default="all")
    parser.add_argument("--severities", default="1-5")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--backend", default="native")
    parser.add_argument("--cache-dir", default=corrupted_sets.DEFAULT_CACHE_DIR)
    args = parser.parse_args()
    corruptions = parse_corruptions(args.corruptions)
    severities = parse_int_list(args.severities, "severities")

    data = load_dataset(args.dataset, args.data_dir, 1, None)
    classifier = loading.load_model_file(args.model)
    source = corrupted_sets.GeneratedSource(data.test, params="cifar", backend=args.backend,
                                            cache_dir=args.cache_dir, verbose=0)
    start = time.perf_counter()
    source.prepare(corruptions, severities)
    generation = time.perf_counter() - start

    # Warm-up: trace the compiled counter for the full and the last partial batch size.
    error_rate(classifier, clean_pipeline(data.test, batch_size=args.batch_size, preprocessing=args.preprocessing))
    start = time.perf_counter()
    error_rate(classifier, clean_pipeline(data.test, batch_size=args.batch_size, preprocessing=args.preprocessing))
    benchmark_errors(classifier, source, corruptions=corruptions, severities=severities,
                     preprocessing=args.preprocessing, batch_size=args.batch_size, verbose=0)
    evaluation = time.perf_counter() - start

    images, labels = next(iter(data.test.batch(data.test_size)))
    images = get_preprocessor(args.preprocessing)(images)
    cells = len(corruptions) * len(severities) + 1  # + the clean pass
    pure_inference(classifier, images, labels, args.batch_size, 1)  # warm-up
    inference = pure_inference(classifier, images, labels, args.batch_size, cells)

    total = cells * data.test_size
    print(f"images: {data.test_size} x {cells} passes (clean + {len(corruptions)} corruptions x "
          f"{len(severities)} severities) = {total}; batch {args.batch_size}; "
          f"{tf.config.threading.get_inter_op_parallelism_threads() or 'default'} inter-op threads")
    print(f"generation of missing corrupted sets: {generation:.1f} s ({args.backend} backend; 0 when cached)")
    print(f"evaluation (cached sets): {evaluation:.2f} s  ({total / evaluation:.0f} img/s)")
    print(f"pure inference:           {inference:.2f} s  ({total / inference:.0f} img/s)")
    print(f"ratio evaluation / pure inference: {evaluation / inference:.2f}")


if __name__ == "__main__":
    main()
