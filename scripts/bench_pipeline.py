"""Benchmark: AR2 training throughput with on-the-fly native corruptions vs pre-corrupted data.

    python scripts/bench_pipeline.py                                  # ResNet-20, demo images, 4 corruptions
    python scripts/bench_pipeline.py --corruptions fog --model resnet50 --image-size 64 --batch-size 16 \\
        --params imagenet

Three input pipelines feed the same compiled AR2 steps (an iteration = one
refinement + one fine-tuning batch, `RepairModel`'s per-phase train functions):

- dynamic: `ar2_tf.data.pipelines.repair_pipeline`, native corruptions in the parallel
  tf.data map (the default `--corruption-mode dynamic`);
- shards: `ar2_tf.data.shards.static_pipeline` over PNG TFRecord shards written by
  `write_shards` (`--corruption-mode static`; the write is timed separately);
- cached: the dynamic pipeline's first batches cached in memory and repeated
  (no corruption, decoding or preprocessing work left).

Each pipeline is timed in blocks (warm-up iterations dropped, so buffers filled
while another pipeline ran do not count), blocks interleaved over rounds.
Prints images/s and the ratio of each pipeline's time to the cached one's
(target <= 1.10).
"""

import argparse
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from ar2_tf.quiet import quiet_start  # noqa: E402

quiet_start()  # TensorFlow's start-up noise off, as the commands do

import keras  # noqa: E402

from ar2_tf.data.pipelines import repair_pipeline  # noqa: E402
from ar2_tf.data.preprocessing import default_preprocessing  # noqa: E402
from ar2_tf.data.shards import static_pipeline, write_shards  # noqa: E402
from ar2_tf.data.sources import load_dataset  # noqa: E402
from ar2_tf.method.repair_model import FINETUNE, REFINE, RepairModel  # noqa: E402
from ar2_tf.models import architectures  # noqa: E402


def iteration(trainer, iterator):
    for phase in (REFINE, FINETUNE):
        trainer.set_phase(phase)
        logs = trainer.train_function(iterator)
    float(logs["clean_accuracy"])


def block(trainer, iterator, warmup, iterations):
    """Seconds for `iterations` AR2 iterations after `warmup` untimed ones."""
    for _ in range(warmup):
        iteration(trainer, iterator)
    start = time.perf_counter()
    for _ in range(iterations):
        iteration(trainer, iterator)
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--corruptions", default="gaussian_noise,defocus_blur,fog,jpeg_compression")
    parser.add_argument("--model", default="resnet20")
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--params", default="cifar")
    parser.add_argument("--train-size", type=int, default=2048, help="demo images (the shards hold them all)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--iterations", type=int, default=6, help="timed AR2 iterations per block")
    parser.add_argument("--warmup", type=int, default=3, help="untimed AR2 iterations before each block")
    args = parser.parse_args()
    source = load_dataset("demo", train_size=args.train_size, test_size=1, image_size=args.image_size)
    keras.utils.set_random_seed(0)
    classifier = architectures.build_model(args.model, source.num_classes, (args.image_size, args.image_size, 3), "none")
    preprocessing = default_preprocessing(args.model, "cifar10")
    trainer = RepairModel(classifier, k=3)
    trainer.compile(optimizer=keras.optimizers.SGD(0.001, momentum=0.9))
    trainer.make_train_function()
    images = 2 * args.batch_size * args.iterations
    rows = []
    for corruption in args.corruptions.split(","):
        def dynamic():
            return repair_pipeline(source.train, corruption=corruption, severity=3, batch_size=args.batch_size,
                                   preprocessing=preprocessing, params=args.params,
                                   total_batches=2 * args.rounds * (args.warmup + args.iterations))

        with tempfile.TemporaryDirectory() as folder:
            start = time.perf_counter()
            write_shards(source.train, folder, num_examples=source.train_size, class_names=source.class_names,
                         corruption=corruption, severity=3, params=args.params, shard_size=256, batch_size=64,
                         verbose=False)
            write_seconds = time.perf_counter() - start
            pipelines = {
                "dynamic": iter(dynamic()),
                "shards": iter(static_pipeline(folder, batch_size=args.batch_size, preprocessing=preprocessing)),
                "cached": iter(dynamic().take(2 * (args.warmup + args.iterations)).cache().repeat()),
            }
            seconds = {name: [] for name in pipelines}
            for round_index in range(args.rounds):
                order = list(pipelines) if round_index % 2 == 0 else list(pipelines)[::-1]
                for name in order:
                    seconds[name].append(block(trainer, pipelines[name], args.warmup, args.iterations))
        median = {name: statistics.median(values) for name, values in seconds.items()}
        rows.append((corruption, median, write_seconds))
        print(corruption, {name: f"{images / value:.0f} img/s" for name, value in median.items()}, flush=True)
    print(f"\n{args.model} @ {args.image_size} px, batch {args.batch_size}, {args.params} parameters, severity 3; "
          f"images/s = clean+corrupted pairs per second over AR2 iterations (median of {args.rounds} blocks of "
          f"{args.iterations})\n")
    print("| corruption | dynamic img/s | shards img/s | cached img/s | dynamic / cached time | "
          "shards / cached time | shard writing img/s |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for corruption, median, write_seconds in rows:
        rate = {name: images / value for name, value in median.items()}
        print(f"| {corruption} | {rate['dynamic']:.0f} | {rate['shards']:.0f} | {rate['cached']:.0f} | "
              f"{median['dynamic'] / median['cached']:.3f} | {median['shards'] / median['cached']:.3f} | "
              f"{source.train_size / write_seconds:.0f} |")


if __name__ == "__main__":
    main()
