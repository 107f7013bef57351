"""Benchmark: evaluation at scale. Peak memory against the number of models, one pass for many models,
and streamed generation at 224 px against pure inference; every number a ratio measured in this run.

    python scripts/bench_eval_scale.py                    # 10,000 JPEG CIFAR-10 test images (about an hour)
    python scripts/bench_eval_scale.py --quick            # 1,000 images: a check in minutes
    python scripts/bench_eval_scale.py --write docs/results/evaluation.md  # also rewrite the table between the eval_scale markers

Each measurement is its own process (`python -m ar2_tf.evaluate`, or this
script with `--child-224`), waited for with `os.wait4`, so the peak resident
memory (ru_maxrss) is that run's alone. Evaluations stream their corrupted
sets (the default: no --cache-dir).

1. Peak RSS of evaluating 1, 6 and 18 models on 5 corruptions x 5 severities
   (+ clean) of the CIFAR-10 test images (`--rss-models`: tiny untrained
   convnets by default, since 18 ResNet-20s over 260,000 images take hours on
   2 cores; the memory at stake is the sets', not the models'). Target: at
   most 3 GB, flat in the number of models.
2. Wall time of 6 models in one evaluation against 6 single-model
   evaluations (6 processes, one model each): the `--rss-models` models on
   the same images as (1) (the 1- and 6-model runs of (1) are reused), and
   6 copies of the shared ResNet-20 on `--time-test-size` images. Target: at
   most 0.5x. At 32 px a ResNet-20 infers an image in about 5 times the time
   its corruptions take to make, so there the saving is bounded by
   inference; it grows with the cost of generation (224 px, glass blur).
3. At 224 px: keras.applications ResNet50 (weights=None, 10 classes) on
   `--images-224` CIFAR-10 test images resized to 224 px, evaluated on the
   clean images and the 5 corruptions at severity 3 (ImageNet parameters,
   generation included), against pure inference: the same compiled forward
   pass over the same number of images, already in memory (both load the
   images and the model). Timed evaluation, inference, inference, evaluation
   in one process, so that a drifting load weighs on both alike. Target: at
   most 1.2x.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ar2_tf.quiet import quiet_start  # noqa: E402

quiet_start()  # TensorFlow's start-up noise off, as the commands do

from readme_tables import SHARED, write_into  # noqa: E402

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
JPEG = os.path.join(SHARED, "data", "cifar10", "cifar10_jpeg_bytes_official_order.npz")
RESNET20 = os.path.join(SHARED, "models", "cifar10_resnet20v1.h5")
CORRUPTIONS = "gaussian_noise,motion_blur,snow,contrast,jpeg_compression"  # noise, blur, weather, digital x2


def measure(argv) -> dict:
    """Runs `argv` in its own process; its wall seconds, peak RSS (GB) and exit status."""
    start = time.perf_counter()
    with tempfile.TemporaryFile("w+") as errors:
        process = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=errors, text=True)
        output = process.stdout.read()
        _, status, usage = os.wait4(process.pid, 0)  # this child's own rusage (getrusage sums all children)
        if os.waitstatus_to_exitcode(status):
            errors.seek(0)
            raise SystemExit(f"{' '.join(argv)} failed:\n{errors.read()[-3000:]}")
    return {"seconds": time.perf_counter() - start, "rss_gb": usage.ru_maxrss * 1024 / 1e9, "output": output}


def evaluate_argv(models, test_size, out, severities="1-5"):
    argv = [sys.executable, "-m", "ar2_tf.evaluate", "--dataset", "cifar10", "--data-dir", JPEG,
            "--corruptions", CORRUPTIONS, "--severities", severities, "--preprocessing", "unit",
            "--verbose", "0", "--out", out]
    if test_size:
        argv += ["--test-size", str(test_size)]
    for model in models:
        argv += ["--model", model]
    return argv


def tiny_models(folder, count):
    """`count` small untrained convnets for CIFAR-10 (different seeds: different files, different errors)."""
    import keras

    paths = []
    for seed in range(count):
        keras.utils.set_random_seed(seed)
        inputs = keras.Input((32, 32, 3))
        x = keras.layers.Conv2D(8, 3, strides=2, activation="relu")(inputs)
        x = keras.layers.GlobalAveragePooling2D()(x)
        paths.append(os.path.join(folder, f"tiny{seed}.keras"))
        keras.Model(inputs, keras.layers.Dense(10, activation="softmax")(x)).save(paths[-1])
    return paths


def resnet20_copies(folder, count):
    paths = [os.path.join(folder, f"resnet20_{i}.h5") for i in range(count)]
    for path in paths:
        shutil.copyfile(RESNET20, path)
    return paths


def one_pass_row(name, paths, test_size, images, together=None, first_alone=None):
    """Table row: the models in one evaluation against one evaluation per model (each its own process)."""
    folder = tempfile.mkdtemp(prefix="one_pass_")
    together = together or measure(evaluate_argv(paths, test_size, os.path.join(folder, "together")))
    alone = [first_alone] if first_alone else []
    alone += [measure(evaluate_argv([path], test_size, os.path.join(folder, f"alone{i}")))
              for i, path in enumerate(paths[len(alone):])]
    shutil.rmtree(folder, ignore_errors=True)
    seconds = sum(run["seconds"] for run in alone)
    print(f"{name}: one evaluation {together['seconds']:.0f} s, {len(paths)} evaluations {seconds:.0f} s", flush=True)
    return [f"{name}: one evaluation / {len(paths)} single-model evaluations",
            f"{images:,} images x 26 sets; 1 process vs {len(paths)}",
            f"{together['seconds']:.0f} s / {seconds:.0f} s = **{together['seconds'] / seconds:.2f}x** "
            f"(peak RSS {together['rss_gb']:.2f} vs {max(run['rss_gb'] for run in alone):.2f} GB)", "<= 0.5x"]


def child_224(args):
    """In its own process: evaluation of ResNet50 at 224 px (streamed generation included) against pure
    inference, timed in the order evaluation, inference, inference, evaluation so that a drifting load on a
    shared machine weighs on both alike."""
    import keras
    import tensorflow as tf

    from ar2_tf.data.sources import load_dataset
    from ar2_tf.evaluation.multi_model import ErrorCounter
    from ar2_tf.evaluation.suite import EvaluationSetup, parse_corruptions, run_evaluation
    from ar2_tf.models.loading import load_model_file

    folder = tempfile.mkdtemp(prefix="bench224_")
    model_path = os.path.join(folder, "resnet50.keras")
    keras.applications.ResNet50(weights=None, classes=10, input_shape=(224, 224, 3)).save(model_path)
    setup = EvaluationSetup(dataset="cifar10", data_dir=JPEG, corruptions=parse_corruptions(CORRUPTIONS),
                            severities=(3,), test_size=args.images_224, image_size=224, params="imagenet",
                            batch_size=args.batch_224)
    passes = len(setup.corruptions) * len(setup.severities) + 1

    def evaluation(index):
        run_evaluation([model_path], setup, preprocessing="caffe", out=os.path.join(folder, f"eval{index}"),
                       verbose=0)

    def inference(_):  # the images and the model are loaded (and traced) here too, as the evaluation does
        data = load_dataset("cifar10", JPEG, 1, args.images_224, 224)
        batches = [(x, y) for x, y in data.test.batch(args.batch_224)]
        counter = ErrorCounter(classifier := load_model_file(model_path), "caffe")
        for _ in range(passes):
            for x, y in batches:
                int(counter(x, y)[0])
        return classifier

    seconds = {"evaluation": 0.0, "inference": 0.0}
    for index, (name, run) in enumerate([("evaluation", evaluation), ("inference", inference),
                                         ("inference", inference), ("evaluation", evaluation)]):
        start = time.perf_counter()
        run(index)
        seconds[name] += time.perf_counter() - start
    shutil.rmtree(folder, ignore_errors=True)
    print(json.dumps({**seconds, "images": 2 * passes * args.images_224,
                      "threads": tf.config.threading.get_intra_op_parallelism_threads()}))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="1,000 / 500 / 64 images instead of 10,000 / 1,000 "
                                                             "/ 192")
    parser.add_argument("--rss-models", choices=("tiny", "resnet20"), default="tiny")
    parser.add_argument("--time-test-size", type=int, help="images of the ResNet-20 one-pass timing (default 1,000)")
    parser.add_argument("--images-224", type=int, help="images of the 224 px timing (default 192)")
    parser.add_argument("--batch-224", type=int, default=32)
    parser.add_argument("--write", help="rewrite the table between <!-- eval_scale:start/end --> in this file")
    parser.add_argument("--child-224", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    rss_size = 1000 if args.quick else None  # None: all 10,000 test images
    args.time_test_size = args.time_test_size or (500 if args.quick else 1000)
    args.images_224 = args.images_224 or (64 if args.quick else 192)
    if args.child_224:
        return child_224(args)

    folder = tempfile.mkdtemp(prefix="bench_eval_scale_")
    rows, images = [], rss_size or 10000
    models = (tiny_models if args.rss_models == "tiny" else resnet20_copies)(folder, 18)
    rss = {}
    for count in (1, 6, 18):
        rss[count] = measure(evaluate_argv(models[:count], rss_size, os.path.join(folder, f"rss{count}")))
        print(f"RSS {count} model(s): {rss[count]['rss_gb']:.2f} GB, {rss[count]['seconds']:.0f} s", flush=True)
    flat = rss[18]["rss_gb"] / rss[1]["rss_gb"]
    for count in (1, 6, 18):
        rows.append([f"peak RSS, {count} model(s) in one evaluation ({args.rss_models})",
                     f"{images:,} images x (clean + 5 corruptions x 5 severities)",
                     f"{rss[count]['rss_gb']:.2f} GB ({rss[count]['seconds']:.0f} s)",
                     "<= 3 GB" + (f"; 18 / 1 models: {flat:.2f}x" if count == 18 else "")])

    rows.append(one_pass_row(f"6 {args.rss_models} models", models[:6], rss_size, images,
                             together=rss[6], first_alone=rss[1]))
    rows.append(one_pass_row("6 ResNet-20s", resnet20_copies(folder, 6), args.time_test_size,
                             args.time_test_size))

    child = measure([sys.executable, os.path.abspath(__file__), "--child-224", "--images-224",
                     str(args.images_224), "--batch-224", str(args.batch_224)])
    timing = json.loads(child["output"].strip().splitlines()[-1])
    print(f"224 px: evaluation {timing['evaluation']:.0f} s, pure inference {timing['inference']:.0f} s", flush=True)
    rows.append(["224 px ResNet50: evaluation (streamed generation included) / pure inference",
                 f"{args.images_224} images x (clean + 5 corruptions at s3), batch {args.batch_224}, each timed "
                 "twice (A B B A)",
                 f"{timing['evaluation']:.0f} s / {timing['inference']:.0f} s = "
                 f"**{timing['evaluation'] / timing['inference']:.2f}x** (RSS {child['rss_gb']:.2f} GB)", "<= 1.2x"])
    shutil.rmtree(folder, ignore_errors=True)

    load = os.getloadavg()[0]
    table = "\n".join(["| measurement | images | result | target |", "| --- | --- | --- | --- |"]
                      + ["| " + " | ".join(row) + " |" for row in rows])
    text = (f"Measured with `python scripts/bench_eval_scale.py{' --quick' if args.quick else ''}` (corruptions "
            f"{CORRUPTIONS.replace(',', ', ')}; load average {load:.1f} at the end, {os.cpu_count()} CPU cores):\n\n{table}\n")
    print("\n" + text)
    if args.write:
        write_into(args.write, text, marker="eval_scale")


if __name__ == "__main__":
    main()
