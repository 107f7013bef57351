"""Benchmark: one AR2 iteration (N=1 refinement + M=1 fine-tuning batch) vs two fine-tuning batches.

    python scripts/bench_step.py                          # ResNet-20 @ 32 px and ResNet-50 @ 64 px
    python scripts/bench_step.py --models resnet20 --rounds 40

Both sides run the compiled per-phase step functions that `fit` runs
(`RepairModel.make_train_function`) on the same synthetic in-memory batch
(no tf.data work: `Dataset.from_tensors(batch).repeat()`, autotuning off),
in steady state (after tracing and warm-up), interleaved round by round
(AR2 iteration, then two fine-tuning batches, order alternating) so that load
from other processes hits both alike. Prints the median seconds and their
ratio (target <= 1.10). The floor is the refinement's one extra forward pass of
the frozen reference model: (2·finetune + reference forward) / (2·finetune),
about 1.08; the breakdown shows what the refinement step costs beyond a
fine-tuning step and that reference forward pass (CAMs of the 2k classes, Eq. 2).

Grad-CAM (`--attention gradcam`, the attention of non-linear heads): for models
with a linear head a second trainer, same weights, refines with Grad-CAM instead
of exact CAMs, timed in the same rounds; the last column is its refinement step
over the CAM one. MobileNetV3Small (a non-linear head: Grad-CAM is its only
kind) shows the whole AR2 iteration with Grad-CAM against fine-tuning.
"""

import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from ar2_tf.quiet import quiet_start  # noqa: E402

quiet_start()  # TensorFlow's start-up noise off, as the commands do

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from ar2_tf.method.head import find_head  # noqa: E402
from ar2_tf.method.repair_model import FINETUNE, REFINE, RepairModel  # noqa: E402
from ar2_tf.models import architectures  # noqa: E402
from ar2_tf.runs import precision  # noqa: E402

# name -> (architecture, image size, batch size, classes)
SETTINGS = {"resnet20": ("resnet20", 32, 128, 10), "resnet50": ("resnet50", 64, 16, 1000),
            "mobilenetv3small": ("MobileNetV3Small", 32, 128, 10),
            "resnet50_224": ("resnet50", 224, 64, 1000)}  # the GPU check's setting (scripts/gpu_check.sh)


def build(architecture, size, classes, k, attention="auto", policy=None):
    keras.utils.set_random_seed(0)
    factory = getattr(keras.applications, architecture, None)  # a class such as MobileNetV3Small (not a module)
    if callable(factory):
        classifier = factory(weights=None, classes=classes, input_shape=(size, size, 3))
    else:
        classifier = architectures.build_model(architecture, classes, (size, size, 3), "none")
    if policy:  # as a run trains: a half-precision copy with a float32 head, loss-scaled optimizers
        keep = precision.float32_layers(classifier, find_head(classifier))
        classifier = precision.with_policy(classifier, policy, keep_float32=keep)
    trainer = RepairModel(classifier, k=k, alpha=1.0, attention=attention)
    trainer.compile(optimizer=keras.optimizers.SGD(0.001, momentum=0.9))
    precision.configure_trainer(trainer, policy=policy)
    trainer.make_train_function()
    return trainer


def batch_iterator(batch_size, size, classes):
    rng = np.random.default_rng(0)
    clean = rng.normal(0, 50, (batch_size, size, size, 3)).astype("float32")
    corrupted = clean + rng.normal(0, 20, clean.shape).astype("float32")
    labels = rng.integers(0, classes, batch_size)
    options = tf.data.Options()
    options.autotune.enabled = False
    return iter(tf.data.Dataset.from_tensors(((clean, corrupted), labels)).repeat().with_options(options)), clean


def step(trainer, phase, iterator):
    trainer.set_phase(phase)
    logs = trainer.train_function(iterator)
    float(logs["clean_accuracy"])  # wait for the step to finish


def timed(function):
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def measure(name, rounds, warmup, k, policy=None):
    architecture, size, batch_size, classes = SETTINGS[name]
    trainer = build(architecture, size, classes, k, policy=policy)
    iterator, clean = batch_iterator(batch_size, size, classes)
    reference = tf.function(lambda x: trainer.reference_backbone(x, training=False))
    clean = tf.constant(clean)

    def ar2():
        step(trainer, REFINE, iterator)
        step(trainer, FINETUNE, iterator)

    def finetune_twice():
        step(trainer, FINETUNE, iterator)
        step(trainer, FINETUNE, iterator)

    parts = {"refine": lambda: step(trainer, REFINE, iterator), "finetune": lambda: step(trainer, FINETUNE, iterator),
             "reference": lambda: reference(clean).numpy()}
    if trainer.attention.kind == "cam":  # the same model refined with Grad-CAM, timed in the same rounds
        gradcam = build(architecture, size, classes, k, attention="gradcam", policy=policy)
        parts["refine_gradcam"] = lambda: step(gradcam, REFINE, iterator)
    for _ in range(warmup):
        ar2(), finetune_twice(), [part() for part in parts.values()]
    times = {"ar2": [], "finetune2": [], **{key: [] for key in parts}}
    for index in range(rounds):
        pairs = [("ar2", ar2), ("finetune2", finetune_twice)]
        for key, function in pairs if index % 2 == 0 else pairs[::-1]:
            times[key].append(timed(function))
        for key, part in parts.items():
            times[key].append(timed(part))
    median = {key: statistics.median(values) for key, values in times.items()}
    floor = (2 * median["finetune"] + median["reference"]) / (2 * median["finetune"])
    return {"model": f"{name} @ {size} px, batch {batch_size}", "ar2": median["ar2"], "ft2": median["finetune2"],
            "ratio": median["ar2"] / median["finetune2"], "floor": floor, "refine": median["refine"],
            "finetune": median["finetune"], "reference": median["reference"],
            "extra": median["refine"] - median["finetune"] - median["reference"], "attention": trainer.attention.kind,
            "gradcam": median.get("refine_gradcam")}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", default="resnet20,resnet50,mobilenetv3small", help=f"comma-separated: {', '.join(SETTINGS)}")
    parser.add_argument("--rounds", type=int, default=20, help="interleaved timing rounds (medians reported)")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("-k", type=int, default=3, help="classes per view in Eq. 2's class set")
    parser.add_argument("--mixed-precision", help="a Keras policy for every model, e.g. mixed_float16 (GPU)")
    args = parser.parse_args()
    rows = [measure(name, args.rounds, args.warmup, args.k, args.mixed_precision) for name in args.models.split(",")]
    devices = ", ".join(d.name for d in tf.config.list_logical_devices() if d.device_type == "GPU") or "CPU"
    print(f"\nmedian seconds over {args.rounds} interleaved rounds (steady state, in-memory batches), k={args.k}, "
          f"on {devices}, {args.mixed_precision or 'float32'}\n")
    print("| model | attention | AR2 iteration (s) | 2 fine-tuning batches (s) | ratio | floor | refine step (s) | "
          "fine-tune step (s) | reference fwd (s) | refine - finetune - reference (s) | Grad-CAM refine step (s) | "
          "Grad-CAM / CAM refine step |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        gradcam = (f"{r['gradcam']:.4f} | {r['gradcam'] / r['refine']:.3f}" if r["gradcam"] is not None
                   else "(the row's own) | –")
        print(f"| {r['model']} | {r['attention']} | {r['ar2']:.4f} | {r['ft2']:.4f} | {r['ratio']:.3f} | "
              f"{r['floor']:.3f} | {r['refine']:.4f} | {r['finetune']:.4f} | {r['reference']:.4f} | "
              f"{r['extra']:+.4f} | {gradcam} |")


if __name__ == "__main__":
    main()
