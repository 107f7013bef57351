"""A Keras Tuner search over AR2's hyperparameters, resumable, with a best config for training.

`run_search(search, out)` is what `python -m tuning` calls. It writes to `out`:

- `search.json`: the search's settings (a different search in the same folder is refused);
- `pretrained.keras`: the classifier, when it pre-trained one itself;
- `baseline.json`: the pretrained classifier's validation accuracies;
- `trials/`: Keras Tuner's project folder; re-running the same command resumes from it;
- `logs/`: TensorBoard, one run per trial with its hyperparameters (hparams dashboard) and metrics;
- `defaults.json`: the paper's k=3, alpha=1, N=M=1 scored under the same budget;
- `best.json`: the best trial's config, read by `python -m ar2_tf.train --config out/best.json`;
- `summary.json`, `summary.md`: every trial, the best one and its gain over the paper's defaults.
"""

import contextlib
import dataclasses
import json
import os
import tempfile

import keras
import keras_tuner
import tensorflow as tf
from keras_tuner.src import utils as keras_tuner_utils

from ar2_tf.choices import TUNERS, UNIFIED
from ar2_tf.data.sources import load_dataset
from ar2_tf.errors import UserError, check_choice, check_severity
from ar2_tf.evaluation.validation import ValidationSet, split_validation
from ar2_tf.models import checks
from ar2_tf.output_files import claim_folder, write_json_atomic
from ar2_tf.runs import repair_run
from ar2_tf.runs.config import RepairConfig, to_dict
from ar2_tf.runs.plan import RunPlan, plan_run
from tuning import report
from tuning.config import SearchConfig
from tuning.hypermodel import PAPER_DEFAULTS, AR2HyperModel, parse_fixes
from tuning.objective import OBJECTIVE, OBJECTIVE_NAME, ConstrainedObjective

PROJECT = "trials"  # Keras Tuner's project folder inside `out`
METRICS = (OBJECTIVE_NAME, "clean_accuracy", "corrupted_accuracy", "clean_drop")
_OUTPUTS = ("search.json", "pretrained.keras", "baseline.json", PROJECT, "logs", "defaults.json", "best.json",
            "summary.json", "summary.md")


def _identity(search):
    """What makes two searches the same; max_trials can grow and compare_defaults can change."""
    values = dataclasses.asdict(search)
    values["train"] = repair_run.run_identity(search.train)
    for name in ("max_trials", "compare_defaults"):
        values.pop(name)
    return json.loads(json.dumps(values, default=str))


def _open_search_dir(out, identity, force):
    claim_folder(out, "search.json", identity, outputs=_OUTPUTS, force=force, what="search", key="search")


def validate(search: SearchConfig, plan: RunPlan = None) -> RunPlan:
    """Checks the search's settings; returns the plan of its training config (`plan`: already made of
    `search.train` by the command, else made here: `ar2_tf.runs.plan.plan_run`)."""
    if search.train.corruption == UNIFIED:
        raise UserError("tuning needs one target corruption; `corruption` 'all' is not supported here.")
    plan = plan or plan_run(search.train)
    check_choice("tuner", search.tuner, TUNERS)
    for name in ("max_trials", "epochs_budget", "val_size", "hyperband_factor"):
        if getattr(search, name) < 1:
            raise UserError(f"`{name}` must be at least 1, got {getattr(search, name)}.")
    if not search.val_severities:
        raise UserError("`val_severities` needs at least one severity.")
    for severity in search.val_severities:
        check_severity(severity)
    if search.max_clean_drop < 0:
        raise UserError(f"`max_clean_drop` must be >= 0 points, got {search.max_clean_drop}.")
    return plan


def _split_source(search):
    """The training pool split into (training source without a test split, validation split)."""
    config = search.train
    pool = config.train_size + search.val_size if config.train_size else None
    source = load_dataset(config.dataset, config.data_dir, pool, None, config.image_size, config.seed)
    train, validation = split_validation(source.train, source.train_size, search.val_size, config.seed)
    # The search has no use for the test split: drop it so nothing downstream can read it.
    tuning_source = dataclasses.replace(source, train=train, train_size=source.train_size - search.val_size,
                                        test=None)
    return tuning_source, validation


def make_tuner(search, hypermodel, out):
    """The Keras Tuner of `search.tuner`, over the project folder `out/trials` (reloaded if present)."""
    common = dict(objective=OBJECTIVE, seed=search.train.seed, directory=out, project_name=PROJECT,
                  overwrite=False)
    tuners = {
        "random": lambda: keras_tuner.RandomSearch(hypermodel, max_trials=search.max_trials, **common),
        # A third of the trials explore at random before the Gaussian process takes over.
        "bayesian": lambda: keras_tuner.BayesianOptimization(
            hypermodel, max_trials=search.max_trials, num_initial_points=max(2, search.max_trials // 3), **common),
        "hyperband": lambda: keras_tuner.Hyperband(hypermodel, max_epochs=search.epochs_budget,
                                                   factor=search.hyperband_factor, **common),
    }
    try:
        tuner = tuners[search.tuner]()
    except ImportError as error:  # BayesianOptimization needs scikit-learn, an optional extra
        raise UserError(f"the {search.tuner} tuner needs a package that is not installed ({error}). Install it "
                        "(pip install scikit-learn) or use the `tuner` random or hyperband.") from None
    _end_completed_trials(tuner.oracle)
    # Keras Tuner reloads a project only when it finds the tuner's file (trials/tuner0.json), which it
    # first writes after the first trial has ended: a search killed before that would start over and
    # train its first trial again. Saved now, every later start reloads the project.
    tuner.save()
    return tuner


def _end_completed_trials(oracle):
    """Ends the reloaded trials that completed but that the oracle's state still has as running.

    Keras Tuner 1.4.8's `Oracle.end_trial` writes the trial's trial.json (status COMPLETED, with its
    metrics and score) before oracle.json, and oracle.json lists the trial as ongoing until the
    tuner saves again after it. A search killed in between reloads the trial as ongoing and queues
    it for a retry, which would train it again. Its trial.json is the complete record of a finished
    trial, so the trial is ended here instead, as `end_trial` would have (end order, run count).
    """
    for trial_id in list(oracle._retry_queue):
        if oracle.trials[trial_id].status != keras_tuner.engine.trial.TrialStatus.COMPLETED:
            continue  # a trial that failed (INVALID) is retried as Keras Tuner intends
        oracle._retry_queue.remove(trial_id)
        if trial_id not in oracle.end_order:
            oracle.end_order.append(trial_id)
            oracle._run_times[trial_id] += 1


def _save_json_atomic(path, obj):
    """Keras Tuner's `utils.save_json` (the same text), written to a temporary file renamed into place."""
    text = json.dumps(obj)
    with tempfile.NamedTemporaryFile("w", dir=os.path.dirname(path), prefix=os.path.basename(path) + ".",
                                     suffix=".tmp", delete=False) as file:
        file.write(text)
    os.replace(file.name, path)
    return text


@contextlib.contextmanager
def _atomic_keras_tuner_files():
    """Within the block, Keras Tuner's trial.json, oracle.json and tuner0.json land whole or not at all.

    Keras Tuner 1.4.8 writes them in place (truncate, then write), and it writes oracle.json right
    after a trial's trial.json says COMPLETED: a search killed then can leave an empty oracle.json,
    which its resume cannot read.
    """
    real = keras_tuner_utils.save_json
    keras_tuner_utils.save_json = _save_json_atomic
    try:
        yield
    finally:
        keras_tuner_utils.save_json = real


def _hparam(hp, hparams_api):
    """A Keras Tuner hyperparameter as a TensorBoard HParam with its domain."""
    config = hp.get_config()
    domains = {
        "Fixed": lambda: hparams_api.Discrete([config.get("value")]),
        "Int": lambda: hparams_api.IntInterval(config["min_value"], config["max_value"]),
        "Float": lambda: hparams_api.RealInterval(float(config["min_value"]), float(config["max_value"])),
        "Choice": lambda: hparams_api.Discrete(config["values"]),
    }
    make = domains.get(type(hp).__name__)
    return hparams_api.HParam(hp.name, make() if make else None)


def write_hparams_config(logdir, space):
    """The hparams dashboard's experiment: the searched hyperparameters and the trial metrics."""
    from tensorboard.plugins.hparams import api as hparams_api

    with tf.summary.create_file_writer(logdir).as_default():
        hparams_api.hparams_config(hparams=[_hparam(hp, hparams_api) for hp in space.space],
                                   metrics=[hparams_api.Metric(name) for name in METRICS])


def _run_defaults(hypermodel, num_classes, logdir, verbose):
    """Scores the paper's setting (learning rates: `RepairConfig` defaults unless fixed)."""
    from tensorboard.plugins.hparams import api as hparams_api

    keras.backend.clear_session()
    hp = keras_tuner.HyperParameters()
    hp.values.update(PAPER_DEFAULTS, k=min(PAPER_DEFAULTS["k"], num_classes))
    model = hypermodel.build(hp)
    logdir = os.path.join(logdir, "paper_defaults")
    callbacks = [keras.callbacks.TensorBoard(logdir, write_graph=False),
                 hparams_api.KerasCallback(logdir, dict(hp.values), trial_id="paper_defaults")]
    metrics = hypermodel.fit(hp, model, callbacks=callbacks, verbose=verbose)
    return {"hyperparameters": dataclasses.asdict(hypermodel.trial_config(hp).repair), "metrics": metrics}


def best_config(hypermodel, trial, model_path) -> dict:
    """The best trial as `python -m ar2_tf.train --config` fields: AR2's at the top level, no training subset."""
    config = hypermodel.trial_config(trial.hyperparameters, trial.hyperparameters.values.get("tuner/epochs"))
    values = {key: value for key, value in to_dict(config).items() if key != "repair"}
    values.update(model=model_path, pretrain_epochs=0, train_size=None, test_size=None)
    values.update(dataclasses.asdict(config.repair))
    return values


def run_search(search: SearchConfig, out: str, *, force=False, verbose=1, plan: RunPlan = None) -> dict:
    """Runs (or resumes) a search and writes its outputs to `out`; returns the summary. `plan`: the plan of
    `search.train` if the caller made it (`validate`)."""
    plan = validate(search, plan)
    config = search.train
    keras.utils.set_random_seed(config.seed)
    tf.random.set_seed(None)  # as in ar2_tf.runs.repair_run: the pipelines seed themselves
    shown, out = out, os.path.abspath(out)
    _open_search_dir(out, _identity(search), force)
    source, validation_split = _split_source(search)
    fixed = parse_fixes(search.fixed, source.num_classes)
    if source.train_size < config.batch_size:
        raise UserError(f"the training split has {source.train_size} images, fewer than one batch of "
                        f"{config.batch_size}; lower `batch_size` or raise `train_size`.")
    classifier = repair_run.prepare_classifier(plan, source, out, verbose)
    checks.check_compatible(classifier, source.num_classes, source.image_shape)
    repair_run.check_repairable(classifier, plan)
    model_path = config.model if plan.model_file else os.path.join(out, "pretrained.keras")
    preprocessing = plan.preprocessing
    validation = ValidationSet.from_split(
        validation_split, corruptions=(config.corruption,), severities=search.val_severities,
        preprocessing=preprocessing, params=config.params, backend=config.corruption_backend, seed=config.seed)
    repair_run.check_input_scale(classifier, plan, validation)
    baseline = validation.accuracies(classifier)
    write_json_atomic(os.path.join(out, "baseline.json"), baseline)
    objective = ConstrainedObjective(validation, baseline["clean_accuracy"], search.max_clean_drop)
    hypermodel = AR2HyperModel(plan=plan.with_repair(RepairConfig()), model_path=model_path,
                               train=source.train, train_size=source.train_size, objective=objective,
                               budget=search.epochs_budget, num_classes=source.num_classes, fixed=fixed,
                               unsafe_model_loading=config.unsafe_model_loading)
    logdir = os.path.join(out, "logs")
    with _atomic_keras_tuner_files():
        tuner = make_tuner(search, hypermodel, out)
        write_hparams_config(logdir, tuner.oracle.get_space())
        if verbose:
            tuner.search_space_summary()
        tuner.search(callbacks=[keras.callbacks.TensorBoard(logdir, write_graph=False)], verbose=verbose)
    if verbose:
        tuner.results_summary(num_trials=len(tuner.oracle.trials))
    defaults_path = os.path.join(out, "defaults.json")
    defaults = None
    if search.compare_defaults:
        if not os.path.exists(defaults_path):
            write_json_atomic(defaults_path, _run_defaults(hypermodel, source.num_classes, logdir, verbose))
        with open(defaults_path) as file:
            defaults = json.load(file)
    best_trials = tuner.oracle.get_best_trials(1)
    if not best_trials:
        raise UserError(f"no trial of the search in {out} completed; see the errors above.")
    best = best_config(hypermodel, best_trials[0], os.path.relpath(model_path) if model_path != config.model
                       else config.model)
    write_json_atomic(os.path.join(out, "best.json"), best)
    summary = report.summarize(search, tuner.oracle, best_trials[0], best, baseline, defaults, shown)
    write_json_atomic(os.path.join(out, "summary.json"), summary)
    report.write_markdown(os.path.join(out, "summary.md"), summary)
    if verbose:
        print(report.closing_note(summary, shown))
    return summary
