"""What a preprocessing spec is, and the arguments that build one: TensorFlow-free, so a command checks its
`preprocessing`, `mean` and `std` flags before it imports TensorFlow.

A spec is one of `NAMES` (unit, caffe, tf, torch, none; `ar2_tf.data.preprocessing.PREPROCESSORS` holds
their functions) or `meanstd:MEAN:STD`: `(x - mean) / std` with the training set's statistics in pixel
units 0-255, each one number (all channels) or three (R,G,B), e.g. `meanstd:125.3,123,113.9:63,62.1,66.7`
for common CIFAR code. A command's `preprocessing` meanstd with `mean` R,G,B and `std` R,G,B builds it
(`preprocessing_spec`, shared by train, evaluate and tuning).
"""

import math

from ar2_tf.errors import UserError, check_choice

NAMES = ("unit", "caffe", "tf", "torch", "none")  # the fixed preprocessings, by name

MEANSTD = "meanstd"
_EXAMPLE = {"mean": "125.3,123,113.9", "std": "63,62.1,66.7"}  # common CIFAR code's statistics
_USAGE = f"`preprocessing` meanstd:{_EXAMPLE['mean']}:{_EXAMPLE['std']}"  # a spec, whoever passes it


def _numbers(values, flag) -> tuple:
    """1 or 3 finite numbers (std: > 0) from "a" or "a,b,c" (or numbers); else a `UserError` naming `flag`."""
    if isinstance(values, str):
        parts = values.split(",")
    else:  # from Python: a number or a sequence of numbers
        parts = list(values) if hasattr(values, "__iter__") else [values]
    try:
        numbers = tuple(float(part) for part in parts)
    except (TypeError, ValueError):
        numbers = ()
    positive = flag == "std"
    if len(numbers) not in (1, 3) or not all(math.isfinite(n) and (n > 0 or not positive) for n in numbers):
        raise UserError(f"the `{flag}` of a meanstd preprocessing must be 1 or 3 comma-separated "
                        f"{'numbers > 0' if positive else 'finite numbers'} (R,G,B) in pixel units 0-255, e.g. "
                        f"{_EXAMPLE[flag]}; got {values!r}.")
    return numbers


def _format(numbers) -> str:
    # Shortest text that reads back as the same float: 123.0 -> "123", 125.3 -> "125.3".
    return ",".join(f"{n:g}" if float(f"{n:g}") == n else repr(n) for n in numbers)


def parse_meanstd(spec) -> tuple:
    """(mean, std) of a "meanstd:MEAN:STD" spec."""
    parts = spec.split(":")
    if len(parts) != 3:
        raise UserError(f"preprocessing {spec!r} is not meanstd:MEAN:STD (e.g. meanstd:{_EXAMPLE['mean']}:"
                        f"{_EXAMPLE['std']}); pass {_USAGE}.")
    return _numbers(parts[1], "mean"), _numbers(parts[2], "std")


def check_preprocessing(spec: str) -> str:
    """The canonical form of a preprocessing spec (a name, or meanstd:MEAN:STD); a bad one is a `UserError`."""
    if isinstance(spec, str) and spec.startswith(MEANSTD + ":"):
        mean, std = parse_meanstd(spec)
        return f"{MEANSTD}:{_format(mean)}:{_format(std)}"
    if spec == MEANSTD:
        raise UserError(f"preprocessing meanstd needs the training set's statistics: pass {_USAGE} (pixel units "
                        "0-255; one number means all channels).")
    return check_choice("preprocessing", spec, NAMES, hint=f"Or your own statistics: {_USAGE}.")


def preprocessing_spec(name: str = None, mean=None, std=None):
    """The spec of a command's `preprocessing` NAME [with `mean` R,G,B and `std` R,G,B], or None when none was
    given (the default then applies). `mean`/`std` go with `meanstd` only, and it needs both."""
    if name != MEANSTD:
        if mean is not None or std is not None:
            given = f"`preprocessing` {name}" if name else "no `preprocessing`"
            raise UserError(f"`mean`/`std` only go with `preprocessing` meanstd ({given} was given); pass "
                            f"`preprocessing` meanstd with `mean` {_EXAMPLE['mean']} and `std` {_EXAMPLE['std']}, "
                            "or drop `mean`/`std`.")
        return None if name is None else check_preprocessing(name)
    if mean is None or std is None:
        raise UserError(f"`preprocessing` meanstd needs both `mean` and `std` (missing: "
                        f"{' and '.join(f'`{f}`' for f, v in (('mean', mean), ('std', std)) if v is None)}): the "
                        f"training set's per-channel statistics in pixel units 0-255, e.g. `mean` "
                        f"{_EXAMPLE['mean']} `std` {_EXAMPLE['std']} (one number means all channels).")
    return f"{MEANSTD}:{_format(_numbers(mean, 'mean'))}:{_format(_numbers(std, 'std'))}"
