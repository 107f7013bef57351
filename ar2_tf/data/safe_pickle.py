"""Loading pickles without letting them run code.

A pickle names Python callables that the loader calls while it reads the file,
so `pickle.load` on a downloaded file can run anything (`os.system`,
`builtins.open`, ...). The official CIFAR-10/100 python batches are pickles of
dicts holding lists, bytes, numbers and NumPy arrays, so the only callables
they need are NumPy's array reconstruction. `load_pickle` allows exactly
those and refuses every other global with a `UserError` naming the file.

Containers, bytes, str and numbers need no callables: pickle has opcodes for
them. The allowed globals, under every spelling a pickle may use for them:

- `numpy.core.multiarray._reconstruct`, `numpy.ndarray`, `numpy.dtype`: what the
  official files (Python 2 cPickle, protocol 2) reference; NumPy 2 writes
  `numpy._core.multiarray._reconstruct`;
- `numpy._core.numeric._frombuffer` (or `numpy.core.numeric`): NumPy's form for
  arrays in protocol 5 pickles;
- `_codecs.encode`, only with the `latin1` codec: how Python 3 writes `bytes`
  in protocol 0-2 pickles;
- `set`, `frozenset`, `bytearray`, `complex` from `builtins` (`__builtin__` in
  Python 2 pickles): plain values that lower protocols spell as calls.

None of these executes code or touches files: `_reconstruct` only builds
`ndarray` instances (the only array class allowed) and `dtype` only parses a
type description.
"""

import _codecs
import pickle
import types

import numpy as np

from ar2_tf.errors import UserError

try:  # NumPy 2
    from numpy._core.multiarray import _reconstruct
    from numpy._core.numeric import _frombuffer
except ImportError:  # NumPy 1
    from numpy.core.multiarray import _reconstruct
    from numpy.core.numeric import _frombuffer

# Where the official files come from, named in every refusal.
_OFFICIAL_SOURCE = "https://www.cs.toronto.edu/~kriz/cifar.html"


class _Refused(Exception):
    """Raised inside the unpickler for anything not allowed; `load_pickle` names the file."""


def _latin1_encode(text, encoding="utf-8", errors="strict"):
    """`_codecs.encode` restricted to latin1, the one codec pickle uses for bytes."""
    if encoding not in ("latin1", "latin-1") or errors != "strict":
        raise _Refused(f"the global _codecs.encode with codec {encoding!r} (only 'latin1' is allowed)")
    return _codecs.encode(text, "latin1")


def _allowed_globals():
    allowed = {}
    for core in ("numpy.core", "numpy._core"):
        allowed[(f"{core}.multiarray", "_reconstruct")] = _reconstruct
        allowed[(f"{core}.numeric", "_frombuffer")] = _frombuffer
    allowed[("numpy", "ndarray")] = np.ndarray
    allowed[("numpy", "dtype")] = np.dtype
    allowed[("_codecs", "encode")] = _latin1_encode
    for module in ("builtins", "__builtin__"):
        for value in (set, frozenset, bytearray, complex):
            allowed[(module, value.__name__)] = value
    return types.MappingProxyType(allowed)  # read-only: nobody widens it at run time


ALLOWED_GLOBALS = _allowed_globals()


class _RestrictedUnpickler(pickle.Unpickler):
    """An `Unpickler` whose `find_class` only returns `ALLOWED_GLOBALS`.

    Every way a pickle can reach a callable (GLOBAL, STACK_GLOBAL and the
    copyreg extension opcodes) goes through `find_class`, so refusing here
    refuses before anything is called.
    """

    def find_class(self, module, name):
        allowed = ALLOWED_GLOBALS.get((module, name))
        if allowed is None:
            raise _Refused(f"the global {module}.{name}")
        return allowed

    def persistent_load(self, pid):
        raise _Refused("a persistent id")


# What a truncated or garbled pickle raises; all are re-raised as a `UserError`.
_MALFORMED = (pickle.UnpicklingError, EOFError, ValueError, TypeError, IndexError, KeyError, AttributeError,
              OverflowError)


def load_pickle(path, *, encoding: str = "bytes"):
    """Reads one pickle file, allowing only containers, plain values and NumPy arrays.

    Args:
        path: the pickle file (e.g. a CIFAR `data_batch_1`).
        encoding: how Python 2 `str` objects are decoded; the official CIFAR
            loader uses "bytes" (dict keys come back as `b"data"`, ...).

    Returns:
        The unpickled object.

    Raises:
        UserError: the file is missing or unreadable, is not a valid pickle, or
            references any global outside `ALLOWED_GLOBALS` (nothing it names
            is called).
    """
    source = str(path)
    try:
        with open(path, "rb") as file:
            return _RestrictedUnpickler(file, encoding=encoding).load()
    except _Refused as refused:
        raise UserError(
            f"{source}: refused to load this pickle because it references {refused}; loading it could run code, "
            "and official CIFAR python batches only reference NumPy array reconstruction. Use the official files "
            f"from {_OFFICIAL_SOURCE}, or convert the data to an .npz file of uint8 arrays (x_train, y_train, "
            "x_test, y_test).") from None
    except OSError as error:
        raise UserError(f"could not read pickle file {source!r}: {error.strerror or error}; check the path and "
                        "its permissions.") from None
    except _MALFORMED as error:
        raise UserError(f"{source} is not a valid pickle ({type(error).__name__}: {error}); the file is probably "
                        f"truncated or corrupt. Download it again from {_OFFICIAL_SOURCE}.") from None
