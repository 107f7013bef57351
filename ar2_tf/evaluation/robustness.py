"""`ar2_tf.evaluate_robustness`: the corruption benchmark of one in-memory Keras model, from Python.

The same measurement as `python -m ar2_tf.evaluate` on a model file, the same images and seed (its generated
sets, `ar2_tf.evaluation.generated_sets`): the clean images in order, batch i of `EVAL_BATCH_SIZE` images
corrupted with `seeds.evaluation_noise_seed(seed, severity, i)`, every model counted with BatchNorm folded
(`ar2_tf.evaluation.multi_model.ErrorCounter`), CE and mCE by `ar2_tf.evaluation.metrics.summarize`. Only the
inputs differ: a model object instead of a file, a dataset instead of a data folder.
"""

import dataclasses

import keras

from ar2_tf.corruptions import BENCHMARK_CORRUPTIONS, check_corruption
from ar2_tf.data.pairs import pixel_split
from ar2_tf.data.stateless_seeds import EVAL_BATCH_SIZE
from ar2_tf.errors import UserError, check_severity
from ar2_tf.evaluation import metrics, tables
from ar2_tf.evaluation.corrupted_sets import GeneratedSource
from ar2_tf.evaluation.multi_model import ErrorCounter, count_errors, evaluate_cells

_MODEL, _BASELINE = "model", "baseline"


def mean_corruption_accuracy(errors: dict) -> float:
    """RobustBench's corruption accuracy: 100 minus the mean error (%) over every (corruption, severity) cell."""
    cells = [error for by_severity in errors.values() for error in by_severity.values()]
    if not cells:
        raise ValueError("no corrupted errors to average")
    return 100.0 - sum(cells) / len(cells)


@dataclasses.dataclass(frozen=True)
class RobustnessResult:
    """The errors of one model on clean and corrupted images, and their summaries.

    Attributes:
        clean_error: top-1 error (%) on the clean images.
        errors: {corruption: {"1": error (%), ...}} at every evaluated severity (keys as in evaluation.json).
        summary: every normalisation of CE / mCE (`ar2_tf.evaluation.metrics.summarize`): "unnormalized",
            and "baseline" / "alexnet" when asked for.
        setup: how it was measured: {"images", "preprocessing", "params", "backend", "seed"} (None when unknown).
    """

    clean_error: float
    errors: dict
    summary: dict
    setup: dict = None

    @property
    def ce(self) -> dict:
        """{corruption: CE}, unnormalised: the mean error (%) over severities."""
        return self.summary["unnormalized"]["ce"]

    @property
    def mce(self) -> float:
        """Mean CE over the corruptions (unnormalised, %)."""
        return self.summary["unnormalized"]["mce"]

    @property
    def mean_corruption_accuracy(self) -> float:
        """RobustBench-style corruption accuracy (%): 100 minus the mean error over all cells."""
        return mean_corruption_accuracy(self.errors)

    def table(self, digits=2) -> str:
        """A Markdown table: per corruption its error at each severity and its CE; then mCE, the clean error and
        the mean corruption accuracy (normalised mCE too, when measured)."""
        severities = sorted({s for cells in self.errors.values() for s in cells}, key=int)
        header = ["corruption", *[f"s{s}" for s in severities], "CE"]
        rows = [[name, *[cells.get(s) for s in severities], self.ce[name]] for name, cells in self.errors.items()]
        text = tables.to_markdown("error (%)", header, rows, digits=digits)
        lines = [f"mCE {self.mce:.{digits}f} (unnormalised)", f"clean error {self.clean_error:.{digits}f}",
                 f"mean corruption accuracy {self.mean_corruption_accuracy:.{digits}f}"]
        for section in ("baseline", "alexnet"):
            if section in self.summary and self.summary[section]["mce"] is not None:
                lines.append(f"mCE {self.summary[section]['mce']:.{digits}f} (normalised by "
                             f"{self.summary[section]['reference']})")
        return text + "\n" + "\n".join(f"- {line}" for line in lines) + "\n"

    def write_report(self, directory, *, model=None, data=None, label="model", class_names=None, title=None) -> str:
        """Writes this result's robustness report, `directory/index.md` and its PNGs (`ar2_tf.robustness_report`,
        which also shows several results side by side); with `model` and `data` (the classifier and the test
        images it was evaluated on) it has a CAM panel. Returns the page's path."""
        from ar2_tf.evaluation.report import robustness_report

        return robustness_report(directory, {label: self}, models=None if model is None else {label: model},
                                 data=data, class_names=class_names, title=title)

    def to_dict(self) -> dict:
        """JSON-ready: {"clean_error", "errors", "ce", "mce", "mean_corruption_accuracy", "summary"}."""
        return {"clean_error": self.clean_error, "errors": self.errors, "ce": self.ce, "mce": self.mce,
                "mean_corruption_accuracy": self.mean_corruption_accuracy, "summary": self.summary}

    def to_dataframe(self):
        """A pandas DataFrame, one row per (corruption, severity) with its error (%); needs pandas."""
        try:
            import pandas
        except ImportError:
            raise UserError("to_dataframe needs pandas (pip install pandas); to_dict() gives the same numbers.") \
                from None
        rows = [{"corruption": name, "severity": int(s), "error": error}
                for name, cells in self.errors.items() for s, error in cells.items()]
        return pandas.DataFrame(rows, columns=["corruption", "severity", "error"])


def _corruption_names(corruptions) -> tuple:
    if corruptions in (None, "all"):
        return BENCHMARK_CORRUPTIONS
    names = (corruptions,) if isinstance(corruptions, str) else tuple(corruptions)
    if not names:
        raise UserError("corruptions is empty; pass 'all' or names such as ['gaussian_noise', 'fog'].")
    return tuple(check_corruption(name) for name in names)


def _classifier(model):
    """The Keras classifier of `model`: a repair model's (its `classifier`), else the model itself."""
    classifier = getattr(model, "classifier", None)
    return classifier if isinstance(classifier, keras.Model) else model


def evaluate_robustness(model, data, *, corruptions="all", severities=(1, 2, 3, 4, 5), preprocessing, seed=0,
                        params="cifar", backend="native", baseline=None, alexnet=False,
                        batch_size=EVAL_BATCH_SIZE, verbose=0) -> RobustnessResult:
    """Clean error, error at every (corruption, severity), CE and mCE of a Keras classifier.

    Gives the numbers `python -m ar2_tf.evaluate` gives for the same model saved to a file, the same images (in
    the same order), corruptions, severities, corruption parameters and seed. Named `evaluate_robustness`, not
    `evaluate`: `ar2_tf.evaluate` is that command's module, which would shadow a package attribute of that
    name as soon as anything imports it.

    Args:
        model: a Keras classifier, or an `ar2_tf.RepairModel` (its classifier is evaluated).
        data: the test images: a `tf.data.Dataset` of `(images, labels)` (batched or not; uint8 or float
            0..255, as `keras.utils.image_dataset_from_directory` with `shuffle=False` gives them) or a tuple
            `(x, y)` of arrays. Its order matters: the noise of a generated set depends on the batch an image
            falls in.
        corruptions: "all" (the 15 benchmark corruptions) or a list of names (`ar2_tf.corruptions`).
        severities: severities to evaluate, 1-5.
        preprocessing: the classifier's input preprocessing (`ar2_tf.data.preprocessing`).
        seed: seed of the corruption noise (`python -m ar2_tf.evaluate --seed`).
        params: corruption parameters, "cifar" or "imagenet" (`python -m ar2_tf.evaluate --corruption-params`;
            its default for image folders is "imagenet").
        backend: "native" or "reference" (`python -m ar2_tf.evaluate --corruption-backend`).
        baseline: another Keras classifier to normalise CE by (`python -m ar2_tf.evaluate --baseline`), measured on
            the same images.
        alexnet: add CE normalised by AlexNet's published ImageNet-C errors (ImageNet only).
        batch_size: images per inference batch (does not change the corrupted images).
        verbose: 1 shows a progress bar per corruption.

    Returns:
        A `RobustnessResult` (`.table()`, `.to_dict()`, `.to_dataframe()`, `.write_report(directory)`).

    Raises:
        UserError: bad arguments, or a corruption that could not be evaluated.

    Example:
        test = keras.utils.image_dataset_from_directory("photos/test", image_size=(96, 96), shuffle=False)
        result = ar2_tf.evaluate_robustness(classifier, test, corruptions=["fog"], preprocessing="tf")
        print(result.table())
    """
    names = _corruption_names(corruptions)
    severities = tuple(check_severity(s) for s in severities)
    split = pixel_split(data, "data")
    counters = {_MODEL: ErrorCounter(_classifier(model), preprocessing, fold=True)}
    if baseline is not None:
        counters[_BASELINE] = ErrorCounter(_classifier(baseline), preprocessing, fold=True)
    counts, failed = count_errors(split.batch(batch_size).prefetch(2), counters)
    if failed:
        raise UserError(f"the model failed on the clean images: {next(iter(failed.values()))}")
    clean = {key: 100.0 * wrong / total for key, (wrong, total) in counts.items()}
    errors, failures = {key: {} for key in counters}, {}

    def record(key, corruption, severity, value):
        if severity is None:
            failures[corruption] = value
        else:
            errors[key].setdefault(corruption, {})[str(severity)] = value

    source = GeneratedSource(split, params=params, backend=backend, seed=seed, verbose=verbose)
    evaluate_cells(counters, source, corruptions=names, severities=severities, batch_size=batch_size,
                   done={key: {} for key in counters}, on_result=record, verbose=verbose)
    if failures:
        listed = "; ".join(f"{name} ({message})" for name, message in failures.items())
        raise UserError(f"{len(failures)} corruption evaluation(s) failed: {listed}.")
    reference = None
    if baseline is not None:
        reference = {"name": "baseline", "clean": clean[_BASELINE], "errors": errors[_BASELINE]}
    summary = metrics.summarize(clean[_MODEL], errors[_MODEL], reference=reference, alexnet=alexnet)
    setup = {"images": counts[_MODEL][1], "preprocessing": preprocessing, "params": params, "backend": backend,
             "seed": seed}
    return RobustnessResult(clean_error=clean[_MODEL], errors=errors[_MODEL], summary=summary, setup=setup)
