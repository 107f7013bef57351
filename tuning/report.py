"""What a finished search reports: every trial, the best one, its gain over the paper's defaults."""

import os

from tuning.objective import OBJECTIVE_NAME

_SHOWN = ("k", "alpha", "refine_steps", "finetune_steps", "refine_learning_rate", "finetune_learning_rate")
_METRICS = (OBJECTIVE_NAME, "corrupted_accuracy", "clean_accuracy", "clean_drop", "iterations")


def _metrics(trial) -> dict:
    return {name: trial.metrics.get_last_value(name) for name in trial.metrics.metrics}


def train_command(search, out) -> str:
    """The command that repairs with the best config; best.json holds AR2's hyperparameters, so the
    data, corruption and severity the search used are passed as flags."""
    config = search.train
    parts = ["python -m ar2_tf.train", f"--config {os.path.join(out, 'best.json')}", f"--dataset {config.dataset}"]
    if config.data_dir:
        parts.append(f"--data-dir {config.data_dir}")
    parts += [f"--corruption {config.corruption}", f"--severity {config.severity}",
              f"--corruption-backend {config.corruption_backend}"]
    return " ".join(parts)


def summarize(search, oracle, best_trial, best, baseline, defaults, out) -> dict:
    trials = []
    for trial_id in sorted(oracle.trials):
        trial = oracle.trials[trial_id]
        trials.append({"trial_id": trial_id, "status": str(trial.status),
                       "hyperparameters": dict(trial.hyperparameters.values), "metrics": _metrics(trial)})
    summary = {
        "setting": {"dataset": search.train.dataset, "model": search.train.model,
                    "corruption": search.train.corruption, "severity": search.train.severity,
                    "train_size": search.train.train_size, "val_size": search.val_size,
                    "val_severities": list(search.val_severities), "tuner": search.tuner,
                    "epochs_budget": search.epochs_budget, "max_clean_drop": search.max_clean_drop,
                    "fixed": list(search.fixed), "seed": search.train.seed},
        "baseline": baseline,
        "best": {"trial_id": best_trial.trial_id, "config": best, "metrics": _metrics(best_trial)},
        "defaults": defaults,
        "trials": trials,
        "train_command": train_command(search, out),
    }
    if defaults:
        summary["gain_over_defaults"] = {
            name: summary["best"]["metrics"][name] - defaults["metrics"][name]
            for name in (OBJECTIVE_NAME, "corrupted_accuracy", "clean_accuracy")}
    return summary


def _row(name, hyperparameters, metrics):
    shown = dict(metrics, iterations=int(metrics["iterations"])) if "iterations" in metrics else metrics
    values = [name] + [_format(hyperparameters.get(key)) for key in _SHOWN] + [_format(shown.get(key))
                                                                               for key in _METRICS]
    return "| " + " | ".join(values) + " |"


def _format(value):
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 0.1 else f"{value:.2f}"
    return str(value)


def write_markdown(path, summary):
    setting, baseline = summary["setting"], summary["baseline"]
    lines = [
        f"# AR2 tuning: {setting['dataset']}, {setting['corruption']}",
        "",
        f"Model `{setting['model']}`; {setting['tuner']} search; training subset {setting['train_size'] or 'all'}"
        f" images, validation {setting['val_size']} images carved from the training split (seed "
        f"{setting['seed']}); corrupted accuracy averaged over severities {setting['val_severities']}; budget "
        f"{setting['epochs_budget']} steps per trial; max clean drop {setting['max_clean_drop']} points; fixed: "
        f"{', '.join(setting['fixed']) or 'none'}.",
        "",
        f"Pretrained model on the validation split: clean {baseline['clean_accuracy']:.2f}%, corrupted "
        f"{baseline['corrupted_accuracy']:.2f}%.",
        "",
        "Objective: corrupted accuracy, or corrupted − 100 − (drop − max drop) when the clean drop exceeds the "
        "limit.",
        "",
        "| trial | k | α | N | M | refine lr | finetune lr | objective | corrupted | clean | drop | T |",
        "|" + " --- |" * 12,
    ]
    best = summary["best"]
    lines.append(_row(f"**best ({best['trial_id']})**", best["config"], best["metrics"]))
    if summary.get("defaults"):
        defaults = summary["defaults"]
        lines.append(_row("paper defaults", defaults["hyperparameters"], defaults["metrics"]))
    ordered = sorted(summary["trials"], key=lambda t: -(t["metrics"].get(OBJECTIVE_NAME) or float("-inf")))
    for trial in ordered:
        lines.append(_row(trial["trial_id"], trial["hyperparameters"], trial["metrics"]))
    if "gain_over_defaults" in summary:
        gain = summary["gain_over_defaults"]
        lines += ["", f"Gain of the best trial over the paper's defaults: objective {gain[OBJECTIVE_NAME]:+.2f}, "
                      f"corrupted accuracy {gain['corrupted_accuracy']:+.2f}, clean accuracy "
                      f"{gain['clean_accuracy']:+.2f} points."]
    lines += ["", "Repair with the best configuration:", "", "```", summary["train_command"], "```"]
    with open(path + ".tmp", "w") as file:
        file.write("\n".join(lines) + "\n")
    os.replace(path + ".tmp", path)


def closing_note(summary, out) -> str:
    best = summary["best"]
    hyper = ", ".join(f"{key}={_format(best['config'][key])}" for key in _SHOWN)
    text = (f"\nbest trial {best['trial_id']}: {hyper}, T={best['config']['iterations']}\n"
            f"  {OBJECTIVE_NAME} {best['metrics'][OBJECTIVE_NAME]:.2f} (corrupted "
            f"{best['metrics']['corrupted_accuracy']:.2f}%, clean {best['metrics']['clean_accuracy']:.2f}%)")
    if "gain_over_defaults" in summary:
        text += f"\n  gain over the paper's defaults: {summary['gain_over_defaults'][OBJECTIVE_NAME]:+.2f} points"
    return text + f"\nbest config: {os.path.join(out, 'best.json')}\nrepair with it: {summary['train_command']}"
