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
  evaluation with the same `out` reuses those results;
- `table1*.{md,csv,json}`, `errors_<model>.{md,csv,json}` and, for
  per-corruption run folders, `table2.{md,csv,json}` (see `ar2_tf.evaluation.tables`).

A model is a `ModelSpec` (`ar2_tf.evaluation.model_spec`): a `.keras`/`.h5` file, or the model of a run
folder of `python -m ar2_tf.train` with what its `report.json` says (preprocessing, dataset, corruption,
method), read by the runs layer above (`ar2_tf.runs.evaluated_runs.model_spec`).
A model can also be evaluated under TENT (`tent`; `python -m ar2_tf.evaluate --tent`): a copy of its own
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
from ar2_tf.data.sources import check_test_split, load_dataset
from ar2_tf.data.stateless_seeds import EVAL_BATCH_SIZE
from ar2_tf.errors import UserError, check_severity, note
from ar2_tf.evaluation import corrupted_sets, metrics, tables
from ar2_tf.evaluation.measurement import Measurement, ModelResult
from ar2_tf.evaluation.model_spec import ModelSpec, as_baseline, under_tent, unique_labels
from ar2_tf.evaluation.multi_model import count_errors, evaluate_cells
from ar2_tf.models import preprocessing_check
from ar2_tf.models.checks import check_compatible
from ar2_tf.models.digest import model_digest
from ar2_tf.models.loading import load_model_file
from ar2_tf.output_files import write_json_atomic

RESULTS_FILE = "evaluation.json"
# Setup fields that select cells without changing any cell's value.
_CELL_INDEPENDENT = ("corruptions", "severities")


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


def run_evaluation(models, setup: EvaluationSetup, *, baseline=None, tent=(), preprocessing=None, out=None,
                   cache_dir=None, cache_budget_gb=corrupted_sets.DEFAULT_CACHE_BUDGET_GB, unsafe_model_loading=False,
                   verbose=1) -> dict:
    """Evaluates every model on the corruption benchmark; returns (and writes to `out`) the results.

    Every model is loaded once, then each test set is read once for all of
    them: one pass over the clean images, then one per (corruption, severity),
    each batch given to every model that still misses that cell
    (`ar2_tf.evaluation.multi_model`).

    Args:
        models: `ModelSpec`s or model file paths (a run folder's spec: `ar2_tf.runs.evaluated_runs.model_spec`).
        setup: the data and corruptions (see `EvaluationSetup`).
        baseline: a `ModelSpec` or model file to normalise CE by (evaluated too).
        tent: `ModelSpec`s or model files evaluated under TENT (each its own copy, reset for every test set).
        preprocessing: override every model's preprocessing.
        out: results folder (None: write nothing).
        cache_dir: where generated corrupted sets are cached (opt-in); None streams them (nothing written).
        cache_budget_gb: disk the cached sets of this evaluation may take (refused with a UserError above it).
        unsafe_model_loading: load model files holding Python lambdas (`ar2_tf.models.loading.load_model_file`).

    Raises:
        UserError: bad input; or, after all results are written, the corruptions that failed.
    """
    specs = [_spec(model) for model in models] + [under_tent(_spec(model)) for model in tent]
    if baseline is not None:
        specs = [as_baseline(_spec(baseline))] + specs
    specs = unique_labels(specs)
    base_label = specs[0].label if baseline is not None else None
    setup = setup.resolve(specs)
    source_data, source = _open_data(setup, cache_dir, cache_budget_gb, verbose)
    setup_record = {**json.loads(json.dumps(dataclasses.asdict(setup))), "source": source.description}
    path = os.path.join(out, RESULTS_FILE) if out else None
    if out:
        os.makedirs(out, exist_ok=True)
    evaluated = _model_results(specs, _load_results(path, setup_record) if path else {}, preprocessing, setup.dataset)

    def results(complete=False):
        # "order": the models in command-line order (the JSON file stores "models" with sorted keys)
        return {"setup": setup_record, "baseline": base_label, "order": [model.spec.label for model in evaluated],
                "models": {model.spec.label: model.record() for model in evaluated}, "complete": complete}

    def save():
        if path:
            write_json_atomic(path, results())

    measurements = list({id(model.measurement): model.measurement for model in evaluated}.values())
    _measure(measurements, setup, source, source_data, save, unsafe_model_loading, verbose)
    _summarize(evaluated, base_label, setup)
    failed = {f"{model.spec.label}: {c}": m for model in evaluated for c, m in model.measurement.failed.items()}
    final = results(complete=not failed)
    if path:
        write_json_atomic(path, final)
    if out:
        tables.write_evaluation_tables(out, final, setup.corruptions, setup.severities)
    if failed:
        listed = "; ".join(f"{k} ({m})" for k, m in failed.items())
        raise UserError(f"{len(failed)} corruption evaluation(s) failed: {listed}. The other results are in "
                        f"{out or 'the returned results'}; fix the data and re-run to fill in the rest.")
    return final


def _spec(model) -> ModelSpec:
    return model if isinstance(model, ModelSpec) else ModelSpec.of_file(model)


def _model_results(specs, previous, preprocessing, dataset) -> list:
    """A `ModelResult` per spec; specs naming one model file, preprocessing and adaptation share a measurement,
    which starts from what a previous evaluation measured of the same file (unchanged since), preprocessing and
    adaptation, whatever its label was."""
    earlier_by = {(json.dumps(entry.get("fingerprint"), sort_keys=True), entry.get("preprocessing"),
                   entry.get("adaptation")): entry for entry in previous.values()}
    measurements, models = {}, []
    for spec in specs:
        chosen = preprocessing or spec.preprocessing or default_preprocessing(spec.path, dataset)
        key, fingerprint = (os.path.abspath(spec.path), chosen, spec.adaptation), spec.fingerprint
        if key not in measurements:
            measurements[key] = Measurement(spec.path, chosen, spec.adaptation, title=spec.label)
            earlier = earlier_by.get((json.dumps(fingerprint, sort_keys=True), chosen, spec.adaptation), {})
            measurements[key].errors, measurements[key].clean = earlier.get("errors", {}), earlier.get("clean")
        if preprocessing or not spec.preprocessing:  # not a run's own: a model file's input scale is a guess
            measurements[key].check = preprocessing is not None
        models.append(ModelResult(spec, measurements[key], fingerprint))
    return models


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


def open_test_sets(setup_record, verbose=0):
    """(clean data, corrupted-set source) of an evaluation's `setup` (as its evaluation.json records it), opened
    again: the images it measured, generated sets streamed."""
    fields = {field.name for field in dataclasses.fields(EvaluationSetup)}
    setup = EvaluationSetup(**{name: tuple(value) if isinstance(value, list) else value
                               for name, value in setup_record.items() if name in fields})
    return _open_data(setup, None, corrupted_sets.DEFAULT_CACHE_BUDGET_GB, verbose)


def _check_preprocessing(classifier, sample, preprocessing, explicit, title):
    """`ar2_tf.models.preprocessing_check` on the test sample; its refusal or warning names the model."""
    try:
        warning = preprocessing_check.check_preprocessing(classifier, *sample, preprocessing, explicit,
                                                          what="test images")
    except UserError as error:
        raise UserError(f"{title}: {error}") from None
    if warning:
        note(f"{title}: {warning}")


def _summarize(models, base_label, setup):
    """Every normalisation of CE / mCE per model, over the corruptions measured at every severity."""
    def complete(errors):
        return {c: e for c, e in errors.items() if len(e) == len(setup.severities)}

    reference = None
    if base_label:
        base = next(model.measurement for model in models if model.spec.label == base_label)
        reference = {"name": base_label, "clean": base.clean, "errors": complete(base.errors)}
    for model in models:
        model.summary = metrics.summarize(model.measurement.clean, complete(model.measurement.errors),
                                          reference=reference, alexnet=setup.dataset == "imagenet")


def _measure(measurements, setup, source, source_data, save, unsafe, verbose):
    """Clean and corrupted errors of every measurement, each test set read once for all models.

    Args:
        measurements: the `Measurement`s to fill in (each model file + preprocessing once).
        save: called after each result, so an interrupted evaluation keeps what it measured.
        unsafe: load model files holding Python lambdas.
    """
    classifiers, counters, sample = {}, {}, None  # a counter holds its model weakly: these keep them alive
    first, copies = {}, {}  # {digest key: the measurement that measures it}, {that one: the identical others}
    for measured in measurements:  # every model loaded once (a TENT copy apart), before the first pass
        classifier = load_model_file(measured.source, unsafe_model_loading=unsafe)
        check_compatible(classifier, source_data.num_classes, source_data.image_shape)
        if measured.check is not None:
            sample = sample or preprocessing_check.sample(setup.dataset, setup.data_dir, setup.image_size, setup.seed,
                                                          "test")
            _check_preprocessing(classifier, sample, measured.preprocessing, measured.check, measured.title)
        measuring = first.setdefault((model_digest(classifier), measured.preprocessing, measured.adaptation), measured)
        if measuring is not measured:  # the same classifier under another name: measured once
            copies.setdefault(measuring, []).append(measured)
            continue
        classifiers[measured] = classifier
        counters[measured] = measured.counter(classifier)
    if verbose:
        print(f"\n== {len(counters)} model(s) in one pass per set: " + ", ".join(
            f"{measured.title} ({measured.preprocessing})" for measured in counters))
        for measuring, same in copies.items():
            print(f"   the same weights as {measuring.title}, not measured again: "
                  + ", ".join(measured.title for measured in same))

    def publish():  # every result so far, to the identical models too, then to evaluation.json
        for measuring, same in copies.items():
            for measured in same:
                measured.copy_from(measuring)
        save()

    clean = {measured: counter for measured, counter in counters.items() if measured.clean is None}
    if clean:
        counts, failed = count_errors(source_data.test.batch(setup.batch_size).prefetch(2), clean)
        if failed:
            measured, message = next(iter(failed.items()))
            raise UserError(f"{measured.source} failed on the clean test images: {message}")
        for measured, (wrong, total) in counts.items():
            measured.clean = 100.0 * wrong / total
        publish()

    def on_result(measured, corruption, severity, value):
        if severity is None:
            measured.failed[corruption] = value
        else:
            measured.errors.setdefault(corruption, {})[str(severity)] = value
        publish()

    evaluate_cells(counters, source, corruptions=setup.corruptions, severities=setup.severities,
                   batch_size=setup.batch_size, done={measured: measured.errors for measured in counters},
                   on_result=on_result, titles={measured: measured.title for measured in counters},
                   verbose=verbose)
    publish()  # also what an earlier evaluation measured, when nothing was left to measure
    wanted = {str(s) for s in setup.severities}
    for measured in measurements:
        errors = {c: {s: e for s, e in measured.errors.get(c, {}).items() if s in wanted} for c in setup.corruptions}
        measured.errors = {c: cells for c, cells in errors.items() if cells}
