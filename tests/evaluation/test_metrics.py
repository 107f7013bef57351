"""CE / mCE under the three normalisations, checked against hand computations."""

import pytest

from ar2_tf.corruptions import BENCHMARK_CORRUPTIONS
from ar2_tf.evaluation import metrics


def test_unnormalized_ce_is_the_mean_over_severities():
    assert metrics.unnormalized_ce({"1": 10.0, "2": 20.0, "3": 60.0}) == pytest.approx(30.0)


def test_normalized_ce_divides_sums_over_the_evaluated_severities():
    errors = {1: 10.0, 3: 30.0}
    reference = {1: 20.0, 2: 999.0, 3: 60.0, 4: 1.0, 5: 1.0}
    # (10 + 30) / (20 + 60) = 0.5 -> 50 %
    assert metrics.normalized_ce(errors, reference) == pytest.approx(50.0)


def test_relative_ce_subtracts_clean_errors():
    errors = {"1": 15.0, "2": 25.0}
    reference = {"1": 30.0, "2": 50.0}
    # ((15-5) + (25-5)) / ((30-10) + (50-10)) = 30 / 60 -> 50 %
    assert metrics.relative_ce(errors, 5.0, reference, 10.0) == pytest.approx(50.0)


def test_undefined_normalisations_are_none():
    assert metrics.normalized_ce({1: 5.0}, {1: 0.0}) is None
    # the reference is not hurt by the corruption: no degradation to normalise by
    assert metrics.relative_ce({1: 12.0}, 10.0, {1: 8.0}, 9.0) is None
    assert metrics.mean_ce({"a": 1.0, "b": None}) is None


def test_missing_reference_severity_is_an_error():
    with pytest.raises(ValueError, match="severities"):
        metrics.normalized_ce({1: 5.0, 2: 6.0}, {1: 10.0})


def test_alexnet_table_matches_the_published_per_corruption_means():
    # AugMix / mmpretrain hard-code these means of the five severities.
    published = {"gaussian_noise": 0.886428, "brightness": 0.564592, "jpeg_compression": 0.606500,
                 "elastic_transform": 0.646056, "snow": 0.866816}
    assert tuple(metrics.ALEXNET_ERRORS) == BENCHMARK_CORRUPTIONS
    for corruption, mean in published.items():
        assert sum(metrics.ALEXNET_ERRORS[corruption]) / 5 == pytest.approx(mean, abs=1e-6)


def test_alexnet_normalised_ce_by_hand():
    errors = {"fog": {1: 33.737, 2: 38.025}}  # half of AlexNet's 67.474 and 76.05
    summary = metrics.summarize(20.0, errors, alexnet=True)
    assert summary["alexnet"]["ce"]["fog"] == pytest.approx(50.0)
    # ((33.737-20) + (38.025-20)) / ((67.474-43.45) + (76.05-43.45)) = 31.762 / 56.624
    assert summary["alexnet"]["relative_ce"]["fog"] == pytest.approx(100 * 31.762 / 56.624)


def test_summarize_labels_every_normalisation():
    errors = {"fog": {"1": 20.0, "2": 40.0}, "snow": {"1": 10.0, "2": 30.0}}
    baseline = {"name": "vanilla", "clean": 5.0,
                "errors": {"fog": {"1": 40.0, "2": 80.0}, "snow": {"1": 10.0, "2": 10.0}}}
    summary = metrics.summarize(5.0, errors, reference=baseline)
    assert summary["clean_error"] == 5.0
    assert summary["unnormalized"] == {"ce": {"fog": 30.0, "snow": 20.0}, "mce": 25.0}
    section = summary["baseline"]
    assert section["reference"] == "vanilla"
    assert section["ce"] == {"fog": pytest.approx(50.0), "snow": pytest.approx(200.0)}
    assert section["mce"] == pytest.approx(125.0)
    # fog: (15 + 35) / (35 + 75) ; snow: (5 + 25) / (5 + 5)
    assert section["relative_ce"]["fog"] == pytest.approx(100 * 50 / 110)
    assert section["relative_ce"]["snow"] == pytest.approx(300.0)
    assert section["relative_mce"] == pytest.approx((100 * 50 / 110 + 300.0) / 2)
    assert "alexnet" not in summary


def test_a_model_normalised_by_itself_scores_100():
    errors = {"fog": {"1": 20.0, "2": 40.0}}
    summary = metrics.summarize(5.0, errors, reference={"name": "self", "clean": 5.0, "errors": errors})
    assert summary["baseline"]["mce"] == pytest.approx(100.0)
    assert summary["baseline"]["relative_mce"] == pytest.approx(100.0)
