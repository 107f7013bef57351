"""The paired clean-error rise (`ar2_tf.evaluation.clean_rise`) against a direct computation."""

import math

import numpy as np
import pytest

from ar2_tf.evaluation import clean_rise


def test_the_rise_and_its_standard_error_are_those_of_the_per_image_differences():
    rng = np.random.default_rng(0)
    before = rng.random(500) < 0.93
    after = np.where(rng.random(500) < 0.08, ~before, before)
    result = clean_rise.paired_rise(before, after)
    differences = before.astype(float) - after.astype(float)  # +1: broken by the repair, -1: fixed by it
    se = 100 * differences.std(ddof=0) / math.sqrt(500)
    assert result["rise"] == pytest.approx(100 * differences.mean())
    assert result["se"] == pytest.approx(se)
    assert result["bound"] == pytest.approx(result["rise"] + 1.645 * se)
    assert result["images"] == 500


def test_identical_verdicts_have_no_rise_and_no_uncertainty():
    verdicts = np.arange(100) % 3 == 0
    assert clean_rise.paired_rise(verdicts, verdicts) == {"rise": 0.0, "se": 0.0, "bound": 0.0, "images": 100}


def test_the_margin_adds_the_two_independent_errors_and_verdicts_round_trip():
    assert clean_rise.sampling_margin(0.3, 0.4) == pytest.approx(1.96 * 0.5)
    verdicts = np.random.default_rng(1).random(77) < 0.5
    assert np.array_equal(clean_rise.decode(clean_rise.encode(verdicts)), verdicts)
    with pytest.raises(ValueError, match="non-empty"):
        clean_rise.paired_rise([], [])
