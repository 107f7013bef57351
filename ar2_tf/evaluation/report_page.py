"""The robustness report's page: one self-contained Markdown page, `index.md`, with its PNGs beside it in one folder.

What `python -m ar2_tf.evaluate --report DIR` and `ar2_tf.robustness_report` write (`ar2_tf.evaluation.report`),
for one model or several side by side (the pretrained model, a repaired one, a baseline, a test-time adaptation),
each from a `RobustnessResult`:

- the summary: clean error, mCE (mean over corruptions of CE, the mean error over severities), RobustBench's
  mean corruption accuracy (100 minus the mean error over every evaluated (corruption, severity) set) and,
  with a baseline, CE normalised by it (`ar2_tf.evaluation.metrics`);
- CE per corruption as bars (`ce_bars.png`) and as a table;
- error against severity, the mean over corruptions and each corruption (`error_by_severity.png`), and a table;
- per model, its error at every (corruption, severity);
- the CAM panel (`cam_panel.png`, `ar2_tf.evaluation.cam_panel`), or one sentence on why a model is not in it.

Figure sizes are fixed: `BARS_FIGSIZE`, `figures.severity_grid` and `figures.panel_grid_figsize` in inches,
`figures.DPI` / `figures.GRID_DPI`. Importing this module loads no TensorFlow (a command checks the report folder
before it starts TensorFlow); the functions that need models import it when called.
"""

import dataclasses
import os

from ar2_tf.errors import UserError, first_line
from ar2_tf.evaluation import figures, tables

PAGE = "index.md"
BARS_PNG, LINES_PNG, CAM_PNG = "ce_bars.png", "error_by_severity.png", "cam_panel.png"
BARS_FIGSIZE = (11.0, 4.8)  # inches at figures.DPI: 16 groups (clean + 15 corruptions), names slanted
DIGITS = 2  # decimals of every number on the page


@dataclasses.dataclass(frozen=True)
class ReportModel:
    """One model of a report.

    Attributes:
        label: its name on the page (unique within a report).
        result: its `ar2_tf.evaluation.robustness.RobustnessResult`.
        classifier: the Keras classifier, for its CAMs; None: not in the CAM panel.
        preprocessing: the classifier's input preprocessing (`ar2_tf.data.preprocessing`).
        no_cam: why it has no CAM (the end of a sentence), when that is not its classifier's head.
    """

    label: str
    result: object
    classifier: object = None
    preprocessing: str = None
    no_cam: str = None


def check_report_folder(directory) -> str:
    """`directory` as an absolute path if a report can be written there (it is created when missing); else one
    `UserError` line naming the problem."""
    path = os.path.abspath(os.fspath(directory))
    if os.path.exists(path) and not os.path.isdir(path):
        raise UserError(f"the report folder {directory!r} is an existing file; pass a folder path (it is created "
                        "if missing).")
    existing = path
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        raise UserError(f"the report folder {directory!r} is inside {existing!r}, which is a file; pass a folder "
                        "path.")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UserError(f"the report folder {directory!r} cannot be written ({existing!r} is not writable); pass a "
                        "folder you can write to.")
    return path


def severity_means(errors: dict, severities) -> list:
    """Mean error (%) over the corruptions at each of `severities`; None where a corruption misses one."""
    means = []
    for severity in severities:
        cells = [by_severity.get(str(severity)) for by_severity in errors.values()]
        means.append(sum(cells) / len(cells) if cells and None not in cells else None)
    return means


def evaluated(models) -> tuple:
    """(corruptions, severities) of a report: every one any model was evaluated on, in the first-seen order."""
    corruptions = list(dict.fromkeys(c for model in models for c in model.result.errors))
    severities = sorted({int(s) for model in models for cells in model.result.errors.values() for s in cells})
    return corruptions, severities


def write_report(directory, models, *, about=(), images=None, title=None, command=None) -> str:
    """Writes `directory/index.md` and its PNGs; returns the page's path.

    Args:
        directory: the report folder (created if missing; files of an earlier report are replaced).
        models: `ReportModel`s, in the order of the page's tables and legends.
        about: Markdown lines on what was evaluated (data, corruption source), listed under the title.
        images: the CAM panel's `ar2_tf.evaluation.cam_panel.PanelImages`, or a sentence on why there is no panel
            (None: no panel, none asked for).
        title: the page title (default: the models' labels).
        command: the command line that made the report, shown first.
    """
    directory = check_report_folder(directory)
    try:
        os.makedirs(directory, exist_ok=True)
    except OSError as error:
        raise UserError(f"could not create the report folder {directory!r} ({error}); pass a folder you can write "
                        "to.") from None
    models = list(models)
    corruptions, severities = evaluated(models)
    title = title or ", ".join(model.label for model in models)
    lines = [f"# Robustness report: {title}", ""]
    if command:
        lines += [f"Made by `{command}`.", ""]
    lines += [f"- {line}" for line in [*about, *_scope(corruptions, severities)]] + [""]
    lines += _summary(models, corruptions, severities)
    lines += _bars(models, corruptions, os.path.join(directory, BARS_PNG))
    lines += _lines(models, corruptions, severities, os.path.join(directory, LINES_PNG))
    lines += ["## Error per corruption and severity", ""]
    for model in models:
        table = tables.severity_table({"errors": model.result.errors}, corruptions, severities,
                                      title=f"{model.label}: error (%)")
        lines += [tables.to_markdown(*table, digits=DIGITS)]
    lines += _cam_section(models, images, os.path.join(directory, CAM_PNG))
    page = os.path.join(directory, PAGE)
    tables.write_text_atomic(page, "\n".join(lines).rstrip("\n") + "\n")
    return page


def _scope(corruptions, severities):
    names = ", ".join(f"`{c}`" for c in corruptions)
    return [f"Corruptions ({len(corruptions)}): {names}.",
            f"Severities ({len(severities)}): {', '.join(map(str, severities))}."]


def _summary(models, corruptions, severities):
    sections = [s for s in ("baseline", "alexnet") if any(s in model.result.summary for model in models)]
    header = ["model", "clean error", "mCE", "mean corruption accuracy"]
    for section in sections:
        reference = next(model.result.summary[section]["reference"] for model in models
                         if section in model.result.summary)
        header += [f"mCE vs {reference}", f"relative mCE vs {reference}"]
    rows = []
    for model in models:
        result = model.result
        cells = [result.errors.get(c, {}).get(str(s)) for c in corruptions for s in severities]
        accuracy = result.mean_corruption_accuracy if cells and None not in cells else None
        row = [model.label, result.clean_error, result.mce, accuracy]
        for section in sections:
            values = result.summary.get(section, {})
            row += [values.get("mce"), values.get("relative_mce")]
        rows.append(row)
    sets = f"{len(corruptions)} corruptions x {len(severities)} severities = {len(corruptions) * len(severities)} sets"
    return ["## Summary", "", tables.to_markdown("", header, rows, digits=DIGITS),
            "All numbers are top-1 error or accuracy in %. *mCE*: the mean over the corruptions of CE, a "
            "corruption's mean error over its severities (unnormalised, the CIFAR-10-C convention). *Mean "
            f"corruption accuracy*: 100 minus the mean error over the {sets} (RobustBench's corruption accuracy)."
            + (" *mCE vs* a reference: 100 x the summed errors over the reference's, per corruption, averaged; "
               "*relative mCE*: the same of the errors minus the clean error (Hendrycks & Dietterich, 2019)."
               if sections else ""), ""]


def _bars(models, corruptions, path):
    columns = ["clean", *corruptions]
    cells = {model.label: {"clean": [model.result.clean_error],
                           **{c: [model.result.ce[c]] for c in corruptions if c in model.result.ce}}
             for model in models}
    figures.plot_seed_bars(cells, columns, path, figsize=BARS_FIGSIZE, xlabel="test set",
                           title="Clean error and corruption error (CE: mean error over severities) per corruption")
    header = ["model", "clean", *corruptions, "mCE"]
    rows = [[model.label, model.result.clean_error, *[model.result.ce.get(c) for c in corruptions], model.result.mce]
            for model in models]
    return ["## Corruption error per corruption", "", f"![Clean error and CE per corruption]({BARS_PNG})", "",
            tables.to_markdown("CE (%): mean error over severities", header, rows, digits=DIGITS)]


def _lines(models, corruptions, severities, path):
    mean = f"mean of {len(corruptions)} corruptions"
    curves = {mean: {model.label: severity_means(model.result.errors, severities) for model in models}}
    for corruption in corruptions:
        curves[corruption] = {model.label: [model.result.errors.get(corruption, {}).get(str(s)) for s in severities]
                              for model in models}
    figures.plot_severity_lines(curves, path, severities=severities,
                                title=f"Error (%) against severity: the {mean}, then each corruption")
    header = ["model", "clean", *[f"s{s}" for s in severities]]
    rows = [[model.label, model.result.clean_error, *curves[mean][model.label]] for model in models]
    return ["## Error against severity", "", f"![Error against severity]({LINES_PNG})", "",
            *[f"{sentence}\n" for sentence in hidden_lines(models)],
            tables.to_markdown(f"Mean error (%) over the {len(corruptions)} corruptions at each severity", header,
                               rows, digits=DIGITS)]


def hidden_lines(models) -> list:
    """A sentence for each model whose errors equal an earlier model's on every test set (a repair that kept the
    pretrained weights, say): its line is drawn exactly under that model's, so the figure alone would hide it."""
    sentences, seen = [], []
    for model in models:
        same = next((earlier for earlier in seen if earlier.result.clean_error == model.result.clean_error
                     and earlier.result.errors == model.result.errors), None)
        if same is None:
            seen.append(model)
        else:
            sentences.append(f"*{model.label}* has the same error as *{same.label}* on every test set: its line lies "
                             "under that one.")
    return sentences


def _cam_section(models, images, path):
    if images is None:
        return []
    lines = ["## Attention (CAM)", ""]
    if isinstance(images, str):
        return lines + [images, ""]
    from ar2_tf.evaluation import cam_panel

    drawn, skipped = [], []
    for model in models:
        reason = model.no_cam or (cam_panel.why_no_cam(model.classifier) if model.classifier is not None
                                  else "no classifier was given for it")
        if reason:
            skipped.append(f"`{model.label}` is not in the panel: {reason}.")
        else:
            drawn.append((model.label, model.classifier, model.preprocessing))
    failure = None
    if drawn:
        try:
            cam_panel.plot_cam_panel(images, drawn, path)
        except Exception as error:  # the panel is an extra: the page keeps its numbers without it
            failure = f"No CAM panel: drawing it failed ({type(error).__name__}: {first_line(error)})."
    if drawn and not failure:
        lines += [f"![CAMs of the first {len(images.labels)} test images under {images.corruption}]({CAM_PNG})", "",
                  f"The first {len(images.labels)} test images, clean and under {images.corruption} (severity "
                  f"{images.severity}, the corruption with the highest CE of `{models[0].label}`), and the class "
                  "activation map (paper Eq. 1) of each image's true class on the corrupted image.", ""]
    else:
        lines += [failure or "No CAM panel: no model has exact class activation maps.", ""]
        if os.path.exists(path):  # an earlier report's panel, which this page does not show
            os.remove(path)
    return lines + skipped + ([""] if skipped else [])


def panel_corruption(result) -> str:
    """The corruption the CAM panel shows: the one with the highest CE of `result` (the first model's)."""
    return max(result.ce, key=result.ce.get)
