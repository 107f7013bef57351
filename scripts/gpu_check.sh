#!/usr/bin/env bash
# GPU check: on a machine with one GPU, in at most 8 minutes, prints
#   1. corruption throughput per op at 224 px: native ops (on the GPU) against imagecorruptions (host),
#   2. the AR2 step's cost for ResNet-50 at 224 px under mixed precision (scripts/bench_step.py),
#   3. evaluation at 224 px (streamed generation included) against pure inference (scripts/bench_eval_scale.py).
# Each part has its own time limit, so one slow part cannot eat the others' minutes.
#
#   bash scripts/gpu_check.sh            # needs ../shared (the CIFAR-10 images) beside the checkout
#
# Not run yet on a GPU. It needs TensorFlow's GPU build (docs/guide/scale.md, "On a GPU"); put the three tables
# it prints in docs/results/speed.md, labelled with the GPU it names.
set -uo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || echo "nvidia-smi failed: no GPU?"
"$PYTHON" -c "import ar2_tf, tensorflow as tf; print('TensorFlow sees', tf.config.list_physical_devices('GPU'))"

echo "== 1. corruption throughput at 224 px"
timeout 200 "$PYTHON" scripts/bench_corruptions.py --sizes 224 --repeats 2 || echo "(part 1 stopped: time limit)"

echo "== 2. AR2 step, ResNet-50 @ 224 px, batch 64, mixed_float16"
timeout 150 "$PYTHON" scripts/bench_step.py --models resnet50_224 --mixed-precision mixed_float16 --rounds 10 \
    || echo "(part 2 stopped: time limit)"

echo "== 3. evaluation vs pure inference at 224 px (ResNet50, 512 images, batch 64, each timed twice)"
timeout 120 "$PYTHON" scripts/bench_eval_scale.py --child-224 --images-224 512 --batch-224 64 | tail -1 \
    | "$PYTHON" -c "import json, sys; t = json.loads(sys.stdin.read()); print(f\"evaluation {t['evaluation']:.1f} s, inference {t['inference']:.1f} s: {t['evaluation'] / t['inference']:.2f}x (target <= 1.2x)\")" \
    || echo "(part 3 stopped: time limit)"
