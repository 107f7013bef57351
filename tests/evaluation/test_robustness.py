"""`ar2_tf.evaluate_robustness`: the numbers of `python -m ar2_tf.evaluate` for an in-memory model, and its result."""

import json

import numpy as np
import pytest
import tensorflow as tf

from ar2_tf.errors import UserError
from ar2_tf.evaluation import metrics
from ar2_tf.evaluation.robustness import RobustnessResult, evaluate_robustness, mean_corruption_accuracy
from tests.helpers import colour_class_classifier, colour_class_images, tiny_classifier

CORRUPTIONS, SEVERITIES = ("gaussian_noise", "fog"), (1, 3)


@pytest.fixture(scope="module")
def data():
    """300 images (two evaluation batches, of 256 and 44): noise whose brightest channel is the class (3: none)."""
    return colour_class_images(300)


@pytest.fixture(scope="module")
def trained(data):
    """A tiny classifier trained a little on `data`: right on many clean images, less so on corrupted ones."""
    return colour_class_classifier(data, epochs=15, batch_size=32)


def test_it_gives_the_evaluate_commands_numbers_on_the_same_images_and_seed(tmp_path, data, trained):
    from ar2_tf.evaluate import main

    x, y = data
    classifier = trained
    classifier.save(tmp_path / "model.keras")
    np.savez(tmp_path / "test.npz", x_test=x, y_test=y)
    batches = tf.data.Dataset.from_tensor_slices((x.astype(np.float32), y.astype(np.int32))).batch(32)
    result = evaluate_robustness(classifier, batches, corruptions=list(CORRUPTIONS), severities=SEVERITIES,
                                 preprocessing="unit", seed=3)
    main(["--model", str(tmp_path / "model.keras"), "--dataset", "npz", "--data-dir", str(tmp_path / "test.npz"),
          "--corruptions", ",".join(CORRUPTIONS), "--severities", "1,3", "--preprocessing", "unit",
          "--corruption-params", "cifar", "--seed", "3", "--out", str(tmp_path / "out"), "--verbose", "0"])
    with open(tmp_path / "out" / "evaluation.json") as file:
        entry = json.load(file)["models"]["model"]
    assert result.clean_error == entry["clean"]
    assert result.errors == entry["errors"] and set(result.errors) == set(CORRUPTIONS)
    assert result.summary == entry["summary"]
    assert result.clean_error < 60 and len({e for cells in result.errors.values() for e in cells.values()}) > 2
    assert result.ce == entry["summary"]["unnormalized"]["ce"]
    # Arrays and another seed: the same clean error, other corrupted images.
    other = evaluate_robustness(classifier, (x, y), corruptions=CORRUPTIONS, severities=SEVERITIES,
                                preprocessing="unit", seed=4)
    assert other.clean_error == result.clean_error and other.errors != result.errors


def test_a_repair_model_is_evaluated_by_its_classifier(data, trained):
    from ar2_tf.method.repair_model import RepairModel

    arguments = dict(corruptions=["contrast"], severities=[2], preprocessing="unit")
    assert (evaluate_robustness(RepairModel(trained, k=2), data, **arguments)
            == evaluate_robustness(trained, data, **arguments))


def test_a_baseline_normalises_ce_as_the_metrics_do(data, trained):
    x, y = data
    model, baseline = trained, tiny_classifier(4, (16, 16, 3), seed=2)
    result = evaluate_robustness(model, (x, y), corruptions=["contrast"], severities=SEVERITIES, preprocessing="unit",
                                 baseline=baseline)
    alone = evaluate_robustness(baseline, (x, y), corruptions=["contrast"], severities=SEVERITIES,
                                preprocessing="unit")
    assert result.summary["baseline"]["ce"]["contrast"] == metrics.normalized_ce(result.errors["contrast"],
                                                                                 alone.errors["contrast"])
    assert "normalised by baseline" in result.table()


def test_the_result_reads_as_a_table_and_a_dict():
    result = RobustnessResult(12.5, {"fog": {"1": 20.0, "3": 40.0}, "contrast": {"1": 30.0, "3": 50.0}},
                              metrics.summarize(12.5, {"fog": {"1": 20.0, "3": 40.0},
                                                       "contrast": {"1": 30.0, "3": 50.0}}))
    assert result.ce == {"fog": 30.0, "contrast": 40.0} and result.mce == 35.0
    assert result.mean_corruption_accuracy == 65.0
    table = result.table()
    assert "| fog | 20.00 | 40.00 | 30.00 |" in table and "mCE 35.00" in table and "accuracy 65.00" in table
    assert json.loads(json.dumps(result.to_dict()))["mean_corruption_accuracy"] == 65.0
    try:
        import pandas  # noqa: F401
    except ImportError:
        with pytest.raises(UserError, match="pandas"):
            result.to_dataframe()
    else:
        frame = result.to_dataframe()
        assert len(frame) == 4 and frame["error"].mean() == 35.0


def test_mean_corruption_accuracy_is_over_every_cell():
    assert mean_corruption_accuracy({"a": {"1": 10.0}, "b": {"1": 20.0, "2": 60.0}}) == 70.0
    with pytest.raises(ValueError):
        mean_corruption_accuracy({})


@pytest.mark.parametrize("arguments, problem", [
    ({"corruptions": ["no_such"]}, "corruption"), ({"severities": [6]}, "severity"), ({"corruptions": []}, "empty"),
])
def test_bad_arguments_are_refused_by_name(data, arguments, problem):
    with pytest.raises(UserError, match=problem):
        evaluate_robustness(tiny_classifier(4, (16, 16, 3)), data, preprocessing="unit", **arguments)
