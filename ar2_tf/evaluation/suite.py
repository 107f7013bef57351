"""The corruption benchmark for a set of models: what `python -m ar2_tf.evaluate` runs.

`run_evaluation` loads each model once, measures its clean error and its error
at every (corruption, severity) of one corrupted-set source, reading each test
set once for all the models (`ar2_tf.evaluation.multi_model`; generated sets
are streamed unless a cache folder is given, see
`ar2_tf.evaluation.generated_sets`), and writes to `out`:

- `evaluation.json`: the setup, and per model the raw errors, failed
  corruptions and every normalisation of CE / mCE (`ar2_tf.evaluation.metrics.summarize`).
  It is rewritten (atomically) after every result, so an interrupted or
  partly failing evaluation keeps what it measured; re-running the same
  command with the same `--out` reuses those results;
- `table1*.{md,csv,json}`, `errors_<model>.{md,csv,json}` and, for
  per-corruption run folders, `table2.{md,csv,json}` (see `ar2_tf.evaluation.tables`).

A model is a `.keras`/`.h5` file or a run folder of `python -m ar2_tf.train`
(its `model.keras` and `report.json`: preprocessing, dataset, corruption, method).
A model can also be evaluated under TENT (`tent=`, `--tent`): a copy of its own
adapts on every test set from a reset (`ar2_tf.baselines.tent`), labelled
"<model> + TENT".
"""

import dataclasses
import json
import os

from ar2_tf.choices import DATASETS, default_params
from ar2_tf.corruptions import BENCHMARK_CORRUPTIONS, check_corruption
from ar2_tf.data import holdout
from ar2_tf.data.preprocessing import default_preprocessing
from ar2_tf.data.seeds import EVAL_BATCH_SIZE
from ar2_tf.data.sources import check_test_split, load_dataset
from ar2_tf.errors import UserError, check_severity
from ar2_tf.evaluation import corrupted_sets, metrics, tables
from ar2_tf.evaluation.multi_model import ErrorCounter, count_errors, evaluate_cells
from ar2_tf.files import write_json_atomic
from ar2_tf.runs import models, preprocessing_check
from ar2_tf.runs.folder import MODEL, RunFolder

RESULTS_FILE = "evaluation.json"
# Setup fields that select cells without changing any cell's value.
_CELL_INDEPENDENT = ("corruptions", "severities")


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """A model to evaluate and what its run folder says about it.

    Attributes:
        path: the model file.
        label: its name in tables and file names (unique within an evaluation).
        preprocessing: from the run's report.json, else None.
        config: the run's config (dataset, corruption, method, ...), else {}.
        adaptation: None, or "tent": adapted on each test set at test time (`ar2_tf.baselines.tent`).
    """

    path: str
    label: str
    preprocessing: str = None
    config: dict = dataclasses.field(default_factory=dict)
    adaptation: str = None

    @property
    def fingerprint(self) -> dict:
        stat = os.stat(self.path)
        return {"path": os.path.abspath(self.path), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def resolve_model(path) -> ModelSpec:
    """A model file, or a run folder (its model.keras and report.json)."""
    run = RunFolder(path)
    if os.path.isdir(path) and run.finished:
        report = run.read_report()
        model_path = run.file(MODEL)
        if not os.path.exists(model_path):
            raise UserError(f"run folder {path!r} has a report.json but no model.keras; was the run finished?")
        config = report.get("config", {})
        label = f"{config.get('method', 'run')}:{config.get('corruption', os.path.basename(os.path.normpath(path)))}"
        return ModelSpec(model_path, label, report.get("preprocessing"), config)
    if os.path.isdir(path):
        raise UserError(f"{path!r} is a folder without report.json; pass a .keras/.h5 file or a finished run "
                        "folder of python -m ar2_tf.train.")
    if not os.path.exists(path):
        raise UserError(f"model {path!r} does not exist; pass a .keras/.h5 file or a run folder.")
    return ModelSpec(path, os.path.splitext(os.path.basename(path))[0])


def under_tent(spec) -> ModelSpec:
    """`spec` evaluated with TENT test-time adaptation."""
    return dataclasses.replace(spec, label=f"{spec.label} + TENT", adaptation="tent")


def _counter(classifier, entry):
    """The entry's error counter: the model as it is, or adapted by TENT on each test set."""
    if entry.get("adaptation") == "tent":
        from ar2_tf.baselines.tent import TentCounter

        return TentCounter(classifier, entry["preprocessing"])
    return ErrorCounter(classifier, entry["preprocessing"], fold=True)


def _unique_labels(specs):
    seen, unique = {}, []
    for spec in specs:
        count = seen.get(spec.label, 0)
        seen[spec.label] = count + 1
        unique.append(dataclasses.replace(spec, label=spec.label if not count else f"{spec.label}#{count + 1}"))
    return unique


def parse_corruptions(text) -> tuple:
    """'all' (the 15 benchmark corruptions, canonical order) or a comma-separated list."""
    if text in (None, "all"):
        return BENCHMARK_CORRUPTIONS
    names = tuple(name.strip() for name in str(text).split(",") if name.strip())
    if not names:
        raise UserError("`corruptions` is empty; pass 'all' or names like gaussian_noise,fog.")
    return tuple(check_corruption(name) for name in names)


@dataclasses.dataclass(frozen=True)
class EvaluationSetup:
    """Everything the corrupted test images depend on (besides the models).

    Every field that is None takes its default from the first run folder's
    config, then from the dataset (see `resolve`).
    """

    dataset: str = None  # demo | cifar10 | cifar100 | imagenet | folder
    data_dir: str = None  # the clean data (folder, .npz); None: tfds / demo
    corrupted_dir: str = None  # official corrupted sets (folder or "tfds"); None: generate
    corruptions: tuple = BENCHMARK_CORRUPTIONS  # evaluated corruptions
    severities: tuple = (1, 2, 3, 4, 5)  # evaluated severities
    test_size: int = None  # seeded subset of the clean test split; first N per severity of official sets
    image_size: int = None  # resize images to this square size
    params: str = None  # corruption parameter set of generated sets: cifar | imagenet
    backend: str = "native"  # corruption backend of generated sets
    seed: int = 0  # seed of the test subset and the generated corruption noise
    batch_size: int = EVAL_BATCH_SIZE  # images per inference batch
    # Images of the test split the runs validated on, left out of it (`ar2_tf.data.holdout`): a count or "auto";
    # None: what the first run folder set aside of this data, else 0. Official corrupted sets: always 0.
    validation: object = None

    def resolve(self, specs) -> "EvaluationSetup":
        run = next((spec.config for spec in specs if spec.config), {})
        dataset = self.dataset or run.get("dataset")
        if dataset is None:
            raise UserError(f"`dataset` is required (one of {', '.join(DATASETS)}) unless a `model` is a run "
                            "folder, whose dataset is then used.")
        data_dir, image_size = self.data_dir, self.image_size
        if run.get("dataset") == dataset:  # the run's own data, at the size it trained at
            data_dir = data_dir or run.get("eval_data_dir") or run.get("data_dir")
            image_size = image_size or run.get("image_size")
        params = default_params(dataset, self.params or run.get("corruption_params"))
        severities = tuple(check_severity(s) for s in self.severities)
        validation = holdout.requested_by_run(run, dataset, data_dir) if self.validation is None else self.validation
        validation = 0 if self.corrupted_dir else validation  # official sets: indexed by position in the whole split
        return dataclasses.replace(self, dataset=dataset, data_dir=data_dir, image_size=image_size, params=params,
                                   severities=severities, validation=validation,
                                   corruptions=tuple(check_corruption(c) for c in self.corruptions))


def _load_results(path, setup_record):
    """Models of a previous evaluation whose cells can be reused: same images (the list of corruptions
    and severities may differ, each cell stands alone)."""
    if not os.path.exists(path):
        return {}
    try:
        with open(path) as file:
            previous = json.load(file)
    except (OSError, json.JSONDecodeError):
        return {}
    same = {k: v for k, v in previous.get("setup", {}).items() if k not in _CELL_INDEPENDENT}
    wanted = {k: v for k, v in setup_record.items() if k not in _CELL_INDEPENDENT}
    return previous.get("models", {}) if same == wanted else {}


def run_evaluation(model_paths, setup: EvaluationSetup, *, baseline=None, tent=(), preprocessing=None, out=None,
                   cache_dir=None, cache_budget_gb=corrupted_sets.DEFAULT_CACHE_BUDGET_GB, unsafe_model_loading=False,
                   verbose=1) -> dict:
    """Evaluates every model on the corruption benchmark; returns (and writes to `out`) the results.

    Every model is loaded once, then each test set is read once for all of
    them: one pass over the clean images, then one per (corruption, severity),
    each batch given to every model that still misses that cell
    (`ar2_tf.evaluation.multi_model`).

    Args:
        model_paths: model files or run folders.
        setup: the data and corruptions (see `EvaluationSetup`).
        baseline: a model file or run folder to normalise CE by (evaluated too).
        tent: model files or run folders evaluated under TENT (each its own copy, reset for every test set).
        preprocessing: override every model's preprocessing.
        out: results folder (None: write nothing).
        cache_dir: where generated corrupted sets are cached (opt-in); None streams them (nothing written).
        cache_budget_gb: disk the cached sets of this evaluation may take (refused with a UserError above it).
        unsafe_model_loading: load model files holding Python lambdas (`ar2_tf.runs.models.load_model_file`).

    Raises:
        UserError: bad input; or, after all results are written, the corruptions that failed.
    """
    specs = [resolve_model(path) for path in model_paths] + [under_tent(resolve_model(path)) for path in tent]
    base_spec = None
    if baseline is not None:
        base_spec = resolve_model(baseline)
        base_spec = dataclasses.replace(base_spec, label=f"{base_spec.label} (baseline)")
        specs = [base_spec] + specs
    specs = _unique_labels(specs)
    base_label = specs[0].label if base_spec else None
    setup = setup.resolve(specs)
    source_data, source = _open_data(setup, cache_dir, cache_budget_gb, verbose)
    setup_record = {**json.loads(json.dumps(dataclasses.asdict(setup))), "source": source.description}
    path = os.path.join(out, RESULTS_FILE) if out else None
    if out:
        os.makedirs(out, exist_ok=True)
    previous = _load_results(path, setup_record) if path else {}
    # "order": the models in command-line order (the JSON file stores "models" with sorted keys)
    results = {"setup": setup_record, "baseline": base_label, "order": [spec.label for spec in specs],
               "models": {}, "complete": False}

    def save():
        if path:
            write_json_atomic(path, results)

    checks = {}  # key -> whether the preprocessing was passed: a model file's input scale is a guess or the user's
    measured = {}  # (model file, preprocessing) -> entry: a baseline also passed as --model is evaluated once
    twins = []  # (entry, the entry it shares its measurements with)
    titles = {}  # key -> the label of the measured model, for progress lines
    for spec in specs:
        entry = previous.get(spec.label, {})
        if entry.get("fingerprint") != spec.fingerprint:
            entry = {}
        entry.update(source=spec.path, fingerprint=spec.fingerprint, config=spec.config, adaptation=spec.adaptation,
                     preprocessing=preprocessing or spec.preprocessing or default_preprocessing(spec.path,
                                                                                                 setup.dataset))
        key = (os.path.abspath(spec.path), entry["preprocessing"], spec.adaptation)
        if preprocessing or not spec.preprocessing:  # not a run folder's own
            checks[key] = preprocessing is not None
        if key in measured:
            twins.append((entry, measured[key]))
        else:
            entry.update(errors=entry.get("errors", {}), failed={})
            measured[key] = entry
            titles[key] = spec.label
        results["models"][spec.label] = entry
    _measure(measured, titles, setup, source, source_data, save, unsafe_model_loading, verbose, checks)
    for entry, twin in twins:
        entry.update(clean=twin["clean"], errors=twin["errors"], failed=twin["failed"])
    _summarize(results, setup)
    failed = {f"{label}: {c}": m for label, e in results["models"].items() for c, m in e["failed"].items()}
    results["complete"] = not failed
    save()
    if out:
        tables.write_evaluation_tables(out, results, setup.corruptions, setup.severities)
    if failed:
        listed = "; ".join(f"{k} ({m})" for k, m in failed.items())
        raise UserError(f"{len(failed)} corruption evaluation(s) failed: {listed}. The other results are in "
                        f"{out or 'the returned results'}; fix the data and re-run to fill in the rest.")
    return results


def _open_data(setup, cache_dir, cache_budget_gb, verbose):
    """The clean test split and the corrupted-set source; cached sets are made up front (within the budget)."""
    source_data = check_test_split(load_dataset(setup.dataset, setup.data_dir, 1, setup.test_size, setup.image_size,
                                                setup.seed, validation=setup.validation),
                                   setup.data_dir, "pass `data_dir` with test images")
    source = corrupted_sets.open_corrupted_source(
        setup.corrupted_dir, clean_split=source_data.test, dataset=setup.dataset, class_names=source_data.class_names,
        image_size=setup.image_size, params=setup.params, backend=setup.backend, seed=setup.seed,
        cache_dir=cache_dir, cache_budget_gb=cache_budget_gb, limit=setup.test_size, verbose=verbose)
    if hasattr(source, "prepare"):
        source.prepare(setup.corruptions, setup.severities)
    return source_data, source


def _check_preprocessing(classifier, sample, preprocessing, explicit, title):
    """`ar2_tf.runs.preprocessing_check` on the test sample; its refusal or warning names the model."""
    try:
        warning = preprocessing_check.check_preprocessing(classifier, *sample, preprocessing, explicit,
                                                          what="test images")
    except UserError as error:
        raise UserError(f"{title}: {error}") from None
    if warning:
        print(f"{title}: {warning}")


def _summarize(results, setup):
    """Every normalisation of CE / mCE per model, over the corruptions measured at every severity."""
    def complete(errors):
        return {c: e for c, e in errors.items() if len(e) == len(setup.severities)}

    reference = None
    if results["baseline"]:
        base = results["models"][results["baseline"]]
        reference = {"name": results["baseline"], "clean": base["clean"], "errors": complete(base["errors"])}
    for entry in results["models"].values():
        entry["summary"] = metrics.summarize(entry["clean"], complete(entry["errors"]), reference=reference,
                                             alexnet=setup.dataset == "imagenet")


def _measure(entries, titles, setup, source, source_data, save, unsafe, verbose, checks=None):
    """Clean and corrupted errors of every model into its entry, each test set read once for all models.

    Args:
        entries: {key: entry} of the models to measure (each model file + preprocessing once).
        titles: {key: label} for the progress lines.
        save: called after each result, so an interrupted evaluation keeps what it measured.
        unsafe: load model files holding Python lambdas.
        checks: {key: whether its preprocessing was passed} of the models whose preprocessing is checked first
            (`ar2_tf.runs.preprocessing_check`).
    """
    classifiers, counters, checks, sample = {}, {}, checks or {}, None
    for key, entry in entries.items():  # every model loaded once (a TENT copy apart), before the first pass
        classifiers[key] = models.load_model_file(entry["source"], unsafe=unsafe)
        models.check_compatible(classifiers[key], source_data.num_classes, source_data.image_shape)
        if key in checks:
            sample = sample or preprocessing_check.sample(setup.dataset, setup.data_dir, setup.image_size, setup.seed,
                                                          "test")
            _check_preprocessing(classifiers[key], sample, entry["preprocessing"], checks[key], titles[key])
        counters[key] = _counter(classifiers[key], entry)
    if verbose:
        print(f"\n== {len(entries)} model(s) in one pass per set: " + ", ".join(
            f"{titles[key]} ({entry['preprocessing']})" for key, entry in entries.items()))
    clean = {key: counters[key] for key, entry in entries.items() if "clean" not in entry}
    if clean:
        counts, failed = count_errors(source_data.test.batch(setup.batch_size).prefetch(2), clean)
        if failed:
            key, message = next(iter(failed.items()))
            raise UserError(f"{entries[key]['source']} failed on the clean test images: {message}")
        for key, (wrong, total) in counts.items():
            entries[key]["clean"] = 100.0 * wrong / total
        save()

    def on_result(key, corruption, severity, value):
        if severity is None:
            entries[key]["failed"][corruption] = value
        else:
            entries[key]["errors"].setdefault(corruption, {})[str(severity)] = value
        save()

    evaluate_cells(counters, source, corruptions=setup.corruptions, severities=setup.severities,
                   batch_size=setup.batch_size, done={key: entry["errors"] for key, entry in entries.items()},
                   on_result=on_result, titles=titles, verbose=verbose)
    wanted = {str(s) for s in setup.severities}
    for entry in entries.values():
        errors = {c: {s: e for s, e in entry["errors"].get(c, {}).items() if s in wanted} for c in setup.corruptions}
        entry["errors"] = {c: cells for c, cells in errors.items() if cells}
