"""Saves each finished benchmark run's last-phase weights as `last_phase.keras` beside its kept `model.keras`.

A run keeps the phase the clean-error guard chose, which may be the pretrained weights. Its last checkpoint holds
what training reached anyway: the classifier after the final epoch. Saved as a model file, it can be evaluated
like any other, to see what each method did before the guard chose:

    python scripts/last_phase.py --benchmark results/cifar10_benchmark_50k --model ../shared/models/cifar10_resnet20v1.h5
    python -m ar2_tf.evaluate --baseline ../shared/models/cifar10_resnet20v1.h5 \
        --model results/cifar10_benchmark_50k/runs/ar2_fog \
        --model results/cifar10_benchmark_50k/runs/ar2_fog/last_phase.keras ... --out EVAL
    python -m ar2_tf.benchmark_view --benchmark results/cifar10_benchmark_50k --evaluation EVAL --weights last-phase

The run folder among the models gives the evaluation the runs' test data and leaves out their validation images,
as the benchmark did; a run that kept its last phase, or the pretrained weights, is measured once
(`ar2_tf.models.digest`).

Runs without phases to choose from (BatchNorm adaptation: one pass) and unfinished runs are skipped, each named.
"""

import argparse
import glob
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))


def save_last_phase(run: str, pretrained: str) -> str:
    """Restores the run's latest checkpoint into a copy of the pretrained classifier and saves it as
    `run/last_phase.keras`; returns its path. A file newer than the checkpoint is kept as it is (rewriting it
    would change its fingerprint, and evaluations would measure it again)."""
    import tensorflow as tf

    from ar2_tf.models.loading import load_model_file
    from ar2_tf.runs import run_folder

    folder = run_folder.RunFolder(run)
    checkpoint = tf.train.latest_checkpoint(folder.file(run_folder.CHECKPOINTS))
    path = folder.file(run_folder.LAST_PHASE)
    if os.path.exists(path) and os.path.getmtime(path) > os.path.getmtime(checkpoint + ".index"):
        return path
    classifier = load_model_file(pretrained)
    # The run's checkpoint holds the classifier beside the epoch and the optimizers (ar2_tf.method.callbacks).
    status = tf.train.Checkpoint(classifier=classifier).restore(checkpoint).expect_partial()
    status.assert_existing_objects_matched()
    classifier.save(path)
    return path


def finished_runs(benchmark: str) -> tuple:
    """([(run, the phase its guard kept)] of runs with phases and a checkpoint, [(run, why it is skipped)])."""
    from ar2_tf.runs import run_folder

    ready, skipped = [], []
    for run in sorted(glob.glob(os.path.join(benchmark, "runs", "*", ""))):
        folder = run_folder.RunFolder(run.rstrip(os.sep))
        if not folder.finished:
            skipped.append((folder.path, "not finished"))
        elif not glob.glob(os.path.join(folder.file(run_folder.CHECKPOINTS), "ckpt-*.index")):
            skipped.append((folder.path, "no checkpoint (a single pass)"))
        elif not folder.read_report().get("validation"):
            skipped.append((folder.path, "no phases to choose from (its model is its last phase)"))
        else:
            ready.append((folder.path, folder.read_report()["validation"]["kept"]))
    return ready, skipped


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--benchmark", required=True, help="the benchmark's --out folder")
    parser.add_argument("--model", required=True, help="the pretrained model file the benchmark repaired")
    args = parser.parse_args(argv)
    ready, skipped = finished_runs(args.benchmark)
    for run, why in skipped:
        print(f"skipped {run}: {why}")
    for run, kept in ready:
        print(f"{save_last_phase(run, args.model)}  (kept: {kept})")


if __name__ == "__main__":
    main()
