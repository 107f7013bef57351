"""What the tuning tests read from a search: the tiny search's flags, its trials and their metrics."""

import glob
import json
import os

TINY = ["--dataset", "demo", "--train-size", "96", "--val-size", "48", "--batch-size", "32", "--epochs-budget", "1",
        "--val-severities", "3", "--verbose", "0"]


def trials_of(out):
    """{trial_id: trial.json} of a search folder."""
    trials = {}
    for path in glob.glob(os.path.join(out, "trials", "trial_*", "trial.json")):
        with open(path) as file:
            trial = json.load(file)
        trials[trial["trial_id"]] = trial
    return trials


def metric(trial, name):
    return trial["metrics"]["metrics"][name]["observations"][-1]["value"][0]
