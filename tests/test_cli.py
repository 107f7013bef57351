"""Every command answers --help, and refuses flags it can check, before importing TensorFlow (seconds); `python -m
tuning` builds its whole search config before."""

import json
import subprocess
import sys

from tests.helpers import ROOT

COMMANDS = ("ar2_tf.train", "ar2_tf.evaluate", "ar2_tf.benchmark", "ar2_tf.benchmark_view", "ar2_tf.precompute",
            "tuning.__main__", "export.__main__")
# Flag errors of the commands that check more than argparse does: (command, flags, message).
BAD_FLAGS = [
    ("ar2_tf.train", ["--corruption", "fogg"], "unknown corruption 'fogg'"),
    ("ar2_tf.train", ["--preprocessing", "meanstd", "--mean", "120"], "needs both --mean and --std"),
    ("ar2_tf.evaluate", ["--model", "m.keras", "--std", "63"], "--mean/--std only go with"),
    ("ar2_tf.benchmark", ["--out", "b", "--batch-size", "0"], "--batch-size must be positive"),
    ("ar2_tf.precompute", ["--corruption", "fog", "--out", "s", "--severity", "9"], "severity must be"),
    ("ar2_tf.precompute", ["--corruption", "fogg", "--out", "s"], "unknown corruption 'fogg'"),
    ("tuning.__main__", ["--dataset", "mnist"], "unknown dataset 'mnist'"),
    ("ar2_tf.train", ["--dataset", "npz"], "--dataset npz needs --data-dir FILE.npz"),  # before any run folder
    ("ar2_tf.benchmark", ["--out", "b", "--dataset", "folder"], "--dataset folder needs --data-dir DIR"),
]

PROBE = f"""
import contextlib, importlib, io, json, sys
from ar2_tf.cli import run_main

helps = {{name: "usage:" in importlib.import_module(name).build_parser().format_help() for name in {COMMANDS!r}}}
errors = []
for name, flags, _ in {BAD_FLAGS!r}:
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        try:
            status = run_main(importlib.import_module(name).main, flags)
        except SystemExit as exit:  # argparse
            status = exit.code
    errors.append((status, err.getvalue()))
from tuning.__main__ import build_parser, search_from_args  # a whole search config, built from good flags
search = search_from_args(build_parser().parse_args(["--corruption", "fog", "--tuner", "bayesian"]))
heavy = [m for m in ("tensorflow", "keras", "keras_tuner", "tensorflow_datasets") if m in sys.modules]
print(json.dumps({{"helps": helps, "errors": errors, "search": [search.train.corruption, search.tuner],
                  "imported": heavy}}))
"""


def test_help_and_flag_errors_come_before_tensorflow_is_imported():
    done = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, capture_output=True, text=True, check=True)
    result = json.loads(done.stdout)
    assert result["imported"] == [] and result["search"] == ["fog", "bayesian"]
    assert all(result["helps"].values()) and len(result["helps"]) == len(COMMANDS), result["helps"]
    for (name, flags, message), (status, error) in zip(BAD_FLAGS, result["errors"]):
        assert status == 2 and message in error, (name, flags, error)


def test_help_shows_a_default_only_where_it_says_something():
    import argparse
    import importlib

    from ar2_tf.cli import HelpFormatter

    for name in COMMANDS:
        text = " ".join(importlib.import_module(name).build_parser().format_help().split())
        for unset in ("(default: None)", "(default: False)", "(default: [])"):
            assert unset not in text, (name, unset)
        assert text.count("(default:") == text.count("(default: ") and "default) (default" not in text, name
    parser = argparse.ArgumentParser(formatter_class=HelpFormatter)
    parser.add_argument("--seed", type=int, default=0, help="seed")
    parser.add_argument("--size", help="size (default: the dataset's)")
    assert " ".join(parser.format_help().split()).count("(default:") == 2
    assert "seed (default: 0)" in " ".join(parser.format_help().split())
