"""The Keras-path example of the guide (docs/guide/python.md) runs as written, on a small image folder with its sizes shrunk: its numbers are
those of `python -m ar2_tf.evaluate` on the model it saves, and the phase it keeps obeys the clean-drop rule."""

import json
import os
import re

import numpy as np
import pytest

from tests.helpers import ROOT

PAGE = os.path.join("docs", "guide", "python.md")
MARKER = "<!-- keras-path-example -->"
# The example's settings the test shrinks: every name must be assigned once at the start of a line. The stand-in
# classifier's own training is the user's code, not the library's: its `fit` line runs with no epoch (at 32 px a few
# epochs leave MobileNetV2 at chance anyway, and tracing its train step would cost the test a third of its time).
# One iteration runs both phases, each through KeepBestPhase, the CAM panels and TensorBoard.
OVERRIDES = {"SIZE": "32", "PRETRAIN_EPOCHS": "0", "ITERATIONS": "1", "PARAMS": '"cifar"'}
CLASSES = ("blue", "green", "red")  # each class's images are noise around its own colour


def guide_example() -> str:
    """The Python block after the marker in the guide's Keras-path page."""
    with open(os.path.join(ROOT, PAGE)) as file:
        text = file.read()
    assert text.count(MARKER) == 1
    return re.search(re.escape(MARKER) + r"\n```python\n(.*?)```", text, re.S).group(1)


def shrunk(code: str, overrides: dict) -> str:
    for name, value in overrides.items():
        code, count = re.subn(rf"^{name} = [^#\n]*", f"{name} = {value} ", code, flags=re.M)
        assert count == 1, f"the Keras-path example assigns {name} {count} times; the test overrides it once"
    return code


def write_image_folder(root, per_class, size, seed):
    """`root/<class>/<i>.png`: noisy images whose brightest channel is the class's colour."""
    import tensorflow as tf

    rng = np.random.default_rng(seed)
    for label, name in enumerate(CLASSES):
        os.makedirs(os.path.join(root, name))
        for index in range(per_class):
            image = rng.integers(0, 120, (size, size, 3))
            image[..., 2 - label] += 120
            png = tf.io.encode_png(image.astype(np.uint8)).numpy()
            with open(os.path.join(root, name, f"{index:03d}.png"), "wb") as file:
                file.write(png)


@pytest.mark.slow
def test_the_keras_path_example_runs_and_matches_the_evaluate_command(tmp_path, monkeypatch, capsys):
    from ar2_tf.evaluate import main as evaluate_main
    from ar2_tf.runs.selection import PRETRAINED, qualifies, select_phase

    size = int(OVERRIDES["SIZE"])
    write_image_folder(tmp_path / "images" / "train", 20, size, seed=0)
    write_image_folder(tmp_path / "images" / "test", 12, size, seed=1)
    monkeypatch.chdir(tmp_path)
    code = shrunk(guide_example(), {**OVERRIDES, "DATA": '"images"'})
    namespace = {}
    exec(compile(code, PAGE, "exec"), namespace)
    keep, classifier, model, result = (namespace[name] for name in ("keep", "classifier", "model", "result"))

    # (b) every epoch was a phase measured by KeepBestPhase; the kept one follows the rule and is what was saved.
    iterations = int(OVERRIDES["ITERATIONS"])
    assert [phase["phase"] for phase in keep.phases] == ["refine", "finetune"] * iterations
    assert keep.kept != PRETRAINED, keep.phases  # a phase within the clean-drop limit: training changed the model
    kept = keep.phases[keep.kept]
    assert qualifies(kept, 1.0) and kept["clean_rise"]["rise"] <= 1.0
    assert keep.kept == select_phase(keep.phases, 1.0)
    assert keep.validation.errors(classifier) == {"clean": kept["clean"], "corrupted": kept["corrupted"]}
    changed = [not np.array_equal(a, b) for a, b in zip(classifier.get_weights(), model.reference.get_weights())]
    assert any(changed)
    history = namespace["history"].history
    assert np.all(np.isfinite(history["align_loss"])) and "val_corrupted_accuracy" in history
    assert os.listdir(tmp_path / "logs" / "cams")  # the attention panels were written

    # (a) the evaluation call gives the command's numbers on the saved model, the same pixels, corruptions and seed
    # (the guide's npz route: the command crops a folder the ImageNet-C way).
    printed = capsys.readouterr().out
    assert result.table() in printed
    x, y = (np.concatenate(parts) for parts in zip(*namespace["test"].as_numpy_iterator()))
    assert np.array_equal(x, np.round(x))  # Keras' resize to the files' own size leaves whole pixel values
    np.savez("test.npz", x_test=x.astype(np.uint8), y_test=y, class_names=np.array(CLASSES))
    evaluate_main(["--model", "repaired.keras", "--dataset", "npz", "--data-dir", "test.npz",
                   "--corruptions", "fog,gaussian_noise,contrast", "--severities", "1,3,5", "--preprocessing", "tf",
                   "--corruption-params", "cifar", "--seed", "0", "--out", "evaluation", "--verbose", "0"])
    with open(tmp_path / "evaluation" / "evaluation.json") as file:
        entry = json.load(file)["models"]["repaired"]
    measured = result.to_dict()
    assert entry["clean"] == measured["clean_error"]
    assert entry["errors"] == measured["errors"]
    assert entry["summary"]["unnormalized"] == {"ce": measured["ce"], "mce": measured["mce"]}
    assert len(measured["errors"]) == 3 and all(len(cells) == 3 for cells in measured["errors"].values())


@pytest.mark.parametrize("name", sorted(OVERRIDES))
def test_the_example_keeps_the_settings_the_test_shrinks(name):
    shrunk(guide_example(), {name: "0"})
