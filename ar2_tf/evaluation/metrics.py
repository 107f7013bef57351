"""Corruption Error (CE) and mean CE (mCE) under the three normalisations in use.

All errors are top-1 error rates in percent; `errors` maps severity (int or
str) to the error at that severity, over the severities evaluated.

- Unnormalised (CIFAR-10-C convention of AugMix and RobustBench):
      CE_c = mean_s E_{s,c}
- Normalised by a reference model f_ref (Hendrycks & Dietterich, ICLR 2019,
  Sec. 4; f_ref = AlexNet on ImageNet-C, or a `baseline` model):
      CE_c = 100 · Σ_s E_{s,c} / Σ_s E^ref_{s,c}
- Relative CE, the same paper's degradation measure:
      rCE_c = 100 · Σ_s (E_{s,c} − E_clean) / Σ_s (E^ref_{s,c} − E^ref_clean)
mCE (and relative mCE) are the mean over corruptions c of CE_c (rCE_c).

A normalised value whose denominator is not positive (a reference that makes
no errors, or that a corruption does not hurt) is undefined: `None`.
"""

import math

# AlexNet's ImageNet-C top-1 error (fraction) per corruption at severities 1..5,
# the normalisers of Hendrycks & Dietterich (2019). Values as hard-coded in
# UCSC-VLAA/RobustCNN `timm/utils/imagenet_c.py` (timm's ImageNet-C utilities);
# their per-corruption means equal the averages hard-coded in AugMix's
# `imagenet.py` (ALEXNET_ERR, "taken from hendrycks/robustness") and
# mmpretrain's `_get_ce_alexnet` (e.g. gaussian_noise 0.886428).
ALEXNET_ERRORS = {
    "gaussian_noise": (0.69528, 0.82542, 0.93554, 0.98138, 0.99452),
    "shot_noise": (0.71224, 0.85108, 0.93574, 0.98182, 0.99146),
    "impulse_noise": (0.78374, 0.89808, 0.9487, 0.9872, 0.99548),
    "defocus_blur": (0.65624, 0.73202, 0.85036, 0.91364, 0.94714),
    "glass_blur": (0.64308, 0.75054, 0.88806, 0.91622, 0.93344),
    "motion_blur": (0.5843, 0.70048, 0.82108, 0.8975, 0.92638),
    "zoom_blur": (0.70008, 0.76992, 0.80784, 0.84198, 0.87198),
    "snow": (0.71726, 0.88392, 0.86468, 0.9187, 0.94952),
    "frost": (0.6139, 0.79734, 0.8879, 0.89942, 0.9343),
    "fog": (0.67474, 0.7605, 0.84378, 0.8726, 0.945),
    "brightness": (0.4514, 0.48502, 0.54048, 0.62166, 0.7244),
    "contrast": (0.64548, 0.7615, 0.88874, 0.9776, 0.9927),
    "elastic_transform": (0.52596, 0.70116, 0.55686, 0.64076, 0.80554),
    "pixelate": (0.52218, 0.5462, 0.73728, 0.87092, 0.91262),
    "jpeg_compression": (0.51002, 0.54718, 0.57294, 0.65458, 0.74778),
}
# AlexNet's clean ImageNet validation top-1 error (fraction), the clean term of relative mCE
# (torchvision AlexNet top-1 accuracy 56.55%; the value used with the table above).
ALEXNET_CLEAN_ERROR = 0.4345


def alexnet_errors(corruption: str, severities) -> dict:
    """AlexNet's ImageNet-C errors (in %) of one corruption at `severities`, as {severity: error}."""
    if corruption not in ALEXNET_ERRORS:
        raise KeyError(f"no published AlexNet errors for {corruption!r} (only the 15 benchmark corruptions)")
    return {int(s): 100.0 * ALEXNET_ERRORS[corruption][int(s) - 1] for s in severities}


def _aligned(errors: dict, reference: dict):
    """The two error lists over the severities of `errors`; the reference must have them all."""
    keys = sorted(errors, key=int)
    by_int = {int(k): v for k, v in reference.items()}
    missing = [k for k in keys if int(k) not in by_int]
    if missing:
        raise ValueError(f"the reference has no error at severities {missing}")
    return [errors[k] for k in keys], [by_int[int(k)] for k in keys]


def _ratio(numerator: float, denominator: float):
    return 100.0 * numerator / denominator if denominator > 0 else None


def unnormalized_ce(errors: dict) -> float:
    """CE_c = mean over severities of the error (CIFAR convention)."""
    if not errors:
        raise ValueError("no severities to average")
    return sum(errors.values()) / len(errors)


def normalized_ce(errors: dict, reference: dict):
    """CE_c = 100 · Σ_s E_s / Σ_s E^ref_s over the severities of `errors`; None if Σ E^ref = 0."""
    own, ref = _aligned(errors, reference)
    return _ratio(sum(own), sum(ref))


def relative_ce(errors: dict, clean: float, reference: dict, reference_clean: float):
    """rCE_c = 100 · Σ_s (E_s − E_clean) / Σ_s (E^ref_s − E^ref_clean); None if the denominator is ≤ 0."""
    own, ref = _aligned(errors, reference)
    return _ratio(sum(e - clean for e in own), sum(e - reference_clean for e in ref))


def mean_ce(ces: dict):
    """mCE: the mean of the per-corruption values; None if any is undefined."""
    values = list(ces.values())
    if not values:
        raise ValueError("no corruptions to average")
    if any(v is None or (isinstance(v, float) and math.isnan(v)) for v in values):
        return None
    return sum(values) / len(values)


def summarize(clean: float, errors: dict, *, reference=None, alexnet=False) -> dict:
    """Every normalisation of one model's errors, labelled.

    Args:
        clean: clean error (%).
        errors: {corruption: {severity: error (%)}}.
        reference: optional {"name", "clean", "errors"} of a baseline model, same layout.
        alexnet: add the AlexNet-normalised CE and relative CE (ImageNet-C only).

    Returns:
        {"clean_error", "unnormalized": {"ce", "mce"}, and when asked "alexnet" /
        "baseline": {"ce", "mce", "relative_ce", "relative_mce"}} (JSON-ready).
    """
    summary = {"clean_error": clean, "unnormalized": _section({c: unnormalized_ce(e) for c, e in errors.items()})}
    if alexnet:
        known = {c: e for c, e in errors.items() if c in ALEXNET_ERRORS}
        refs = {c: alexnet_errors(c, e) for c, e in known.items()}
        summary["alexnet"] = _normalised(clean, known, refs, 100.0 * ALEXNET_CLEAN_ERROR)
        summary["alexnet"]["reference"] = "AlexNet (Hendrycks & Dietterich 2019)"
    if reference is not None:
        shared = {c: e for c, e in errors.items() if c in reference["errors"]}
        summary["baseline"] = _normalised(clean, shared, reference["errors"], reference["clean"])
        summary["baseline"]["reference"] = reference["name"]
    return summary


def _section(ces: dict) -> dict:
    return {"ce": ces, "mce": mean_ce(ces) if ces else None}


def _normalised(clean, errors, references, reference_clean) -> dict:
    section = _section({c: normalized_ce(e, references[c]) for c, e in errors.items()})
    relative = {c: relative_ce(e, clean, references[c], reference_clean) for c, e in errors.items()}
    section.update(relative_ce=relative, relative_mce=mean_ce(relative) if relative else None)
    return section
