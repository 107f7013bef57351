"""Tests of ar2_tf.data.safe_pickle: malicious pickles are refused before they run, CIFAR-shaped pickles load."""

import builtins
import copyreg
import os
import pickle
import re
import subprocess

import numpy as np
import numpy.testing._private.utils as numpy_testing_utils
import pytest

from ar2_tf.data.safe_pickle import ALLOWED_GLOBALS, load_pickle
from ar2_tf.errors import UserError

PROTOCOLS = range(pickle.HIGHEST_PROTOCOL + 1)
from tests.helpers import py2_pickle

# --- Bytes in the official files' format ---------------------------------------------------------------------------
# The official CIFAR batches were written by Python 2 cPickle, protocol 2: `str` values are SHORT_BINSTRING /
# BINSTRING opcodes and arrays are spelled `numpy.core.multiarray._reconstruct`. Python 3 cannot write that, so
# `py2_pickle` writes the opcodes itself (a dict of bytes, ints, lists and uint8 arrays is all CIFAR needs).





def cifar10_batch(n=3, seed=0) -> dict:
    rng = np.random.default_rng(seed)
    return {b"batch_label": b"training batch 1 of 5",
            b"labels": [int(v) for v in rng.integers(0, 10, n)],
            b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
            b"filenames": [b"img_%d.png" % i for i in range(n)]}


def _write(tmp_path, payload: bytes, name="data_batch_1"):
    path = tmp_path / name
    path.write_bytes(payload)
    return path


def _assert_batches_equal(got, want):
    assert set(got) == set(want)
    for key, value in want.items():
        if isinstance(value, np.ndarray):
            assert got[key].dtype == value.dtype and got[key].shape == value.shape
            np.testing.assert_array_equal(got[key], value)
        else:
            assert got[key] == value


# --- Legitimate pickles ---------------------------------------------------------------------------------------------

def test_py2_format_is_what_the_official_files_reference():
    # The globals of the hand-written Python 2 bytes are the ones named in the module docstring.
    import pickletools

    payload = py2_pickle(cifar10_batch())
    names = {arg for op, arg, _ in pickletools.genops(payload) if op.name == "GLOBAL"}
    assert names == {"numpy.core.multiarray _reconstruct", "numpy ndarray", "numpy dtype"}
    assert all(tuple(name.split(" ")) in ALLOWED_GLOBALS for name in names)


def test_official_py2_format_loads(tmp_path):
    batch = cifar10_batch(n=4)
    path = _write(tmp_path, py2_pickle(batch))
    _assert_batches_equal(load_pickle(path), batch)  # encoding="bytes": keys and strings stay bytes
    latin1 = load_pickle(path, encoding="latin1")
    assert latin1["batch_label"] == "training batch 1 of 5"
    np.testing.assert_array_equal(latin1["data"], batch[b"data"])


def test_py2_format_large_array(tmp_path):
    # A data string over 255 bytes takes the BINSTRING opcode, as every real batch does.
    batch = {b"data": np.arange(2 * 3072, dtype=np.uint8).reshape(2, 3072), b"labels": [1000, 70000]}
    _assert_batches_equal(load_pickle(_write(tmp_path, py2_pickle(batch))), batch)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_cifar_structures_round_trip_in_every_protocol(tmp_path, protocol):
    cifar100 = {b"filenames": [b"a.png", b"b.png"], b"batch_label": b"training batch 1 of 1",
                b"fine_labels": [19, 99], b"coarse_labels": [11, 19],
                b"data": np.arange(2 * 3072, dtype=np.uint8).reshape(2, 3072) % 251}
    for batch in (cifar10_batch(), cifar100):
        path = _write(tmp_path, pickle.dumps(batch, protocol=protocol))
        _assert_batches_equal(load_pickle(path), batch)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_other_plain_values_and_dtypes_load(tmp_path, protocol):
    value = {"set": {1, 2}, "frozenset": frozenset({b"x"}), "bytearray": bytearray(b"ab"), "complex": 1 + 2j,
             "tuple": (1.5, None, True), "str": "\u00e9t\u00e9", "big": 2 ** 80,
             "float32": np.linspace(0, 1, 6, dtype=np.float32).reshape(2, 3),
             "int64": np.array([-1, 2 ** 40]), "big_endian": np.array([1, 2], dtype=">i4"),
             "fortran": np.asfortranarray(np.arange(6, dtype=np.uint8).reshape(2, 3))}
    payload = pickle.dumps(value, protocol=protocol)
    got = load_pickle(_write(tmp_path, payload))
    plain = pickle.loads(payload, encoding="bytes")  # what an unrestricted loader returns
    for key, want in value.items():
        if isinstance(want, np.ndarray):
            assert got[key].dtype == plain[key].dtype
            np.testing.assert_array_equal(got[key], want)
        else:
            assert got[key] == want and type(got[key]) is type(want)


def test_allowed_globals_are_read_only():
    with pytest.raises(TypeError):
        ALLOWED_GLOBALS[("os", "system")] = os.system


# --- Malicious pickles ----------------------------------------------------------------------------------------------

class _Gadget:
    """Pickles as a call of `function(*args)`: what an attacker puts in a file."""

    def __init__(self, function, *args):
        self.function, self.args = function, args

    def __reduce__(self):
        return self.function, self.args


def _gadgets(target):
    """(name, gadget) pairs, each of which creates `target` when unpickled by plain pickle."""
    return [
        ("io.open", _Gadget(builtins.open, str(target), "w")),
        ("os.system", _Gadget(os.system, f"touch '{target}'")),
        ("subprocess.call", _Gadget(subprocess.call, ["touch", str(target)])),
        ("builtins.exec", _Gadget(builtins.exec, f"open({str(target)!r}, 'w').close()")),
        ("builtins.eval", _Gadget(builtins.eval, f"open({str(target)!r}, 'w').close()")),
        ("os.mkdir", _Gadget(os.mkdir, str(target))),
        # NumPy ships an exec helper: allowing "numpy.*" wholesale would let this through.
        ("numpy runstring", _Gadget(numpy_testing_utils.runstring, f"open({str(target)!r}, 'w').close()", {})),
    ]


GADGET_NAMES = [name for name, _ in _gadgets("x")]


def test_gadget_really_creates_the_file_with_plain_pickle(tmp_path):
    # Proves the payloads below are real: plain pickle.loads runs them.
    target = tmp_path / "pwned"
    with pickle.loads(pickle.dumps(_gadgets(target)[0][1])):
        pass
    assert target.exists()


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("index", range(len(GADGET_NAMES)), ids=GADGET_NAMES)
def test_gadget_is_refused_and_never_runs(tmp_path, protocol, index):
    target = tmp_path / "pwned"
    payload = pickle.dumps(_gadgets(target)[index][1], protocol=protocol)
    path = _write(tmp_path, payload)
    with pytest.raises(UserError, match=re.escape(str(path)) + ".*refused.*global"):
        load_pickle(path)
    assert not target.exists()


@pytest.mark.parametrize("protocol", [2, 4])
def test_gadget_inside_a_cifar_batch_is_refused(tmp_path, protocol):
    target = tmp_path / "pwned"
    batch = cifar10_batch()
    batch[b"labels"] = [1, _Gadget(builtins.open, str(target), "w"), 2]
    path = _write(tmp_path, pickle.dumps(batch, protocol=protocol))
    with pytest.raises(UserError, match=r"global io\.open"):  # builtins.open is io.open
        load_pickle(path)
    assert not target.exists()


@pytest.mark.parametrize("payload, refused", [
    (b"cbuiltins\nopen\n(V{target}\nVw\ntR.", "builtins.open"),
    (b"c__builtin__\neval\n(S'1'\ntR.", "__builtin__.eval"),  # Python 2 spelling
    (b"cposix\nsystem\n(S'true'\ntR.", "posix.system"),
    (b"cnumpy.core.multiarray\nscalar\n.", "numpy.core.multiarray.scalar"),  # NumPy, but not needed by CIFAR
    (b"ccopy_reg\n_reconstructor\n.", "copy_reg._reconstructor"),
    (b"c_codecs\nencode\n(Vx\nVrot13\ntR.", "_codecs.encode with codec 'rot13'"),
    (b"(I1\nP0\ntR.", "a persistent id"),
])
def test_hand_written_refusals_name_the_global(tmp_path, payload, refused):
    target = tmp_path / "pwned"
    path = _write(tmp_path, payload.replace(b"{target}", str(target).encode()))
    with pytest.raises(UserError, match=re.escape(f"{path}: refused") + ".*" + re.escape(refused)):
        load_pickle(path)
    assert not target.exists()


def test_copyreg_extension_codes_are_refused(tmp_path):
    # EXT1/EXT2/EXT4 opcodes name a global by a registered number instead of by name.
    target = tmp_path / "pwned"
    copyreg.add_extension("io", "open", 0xF00D)  # builtins.open is io.open
    try:
        payload = pickle.dumps(_Gadget(builtins.open, str(target), "w"), protocol=2)
        assert b"\x83" in payload or b"\x84" in payload  # EXT2 / EXT4, not a GLOBAL
        path = _write(tmp_path, payload)
        with pytest.raises(UserError, match=r"global io\.open"):
            load_pickle(path)
    finally:
        copyreg.remove_extension("io", "open", 0xF00D)
    assert not target.exists()


def test_refusal_says_how_to_fix(tmp_path):
    path = _write(tmp_path, pickle.dumps(_Gadget(os.mkdir, str(tmp_path / "d"))))
    with pytest.raises(UserError, match=r"official files from https://www\.cs\.toronto\.edu/~kriz/cifar\.html.*npz"):
        load_pickle(path)


# --- Broken files ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("payload", [b"", b"\x80\x02}q\x01(U\x04data", b"not a pickle at all", b"\x80\x02K\x01"])
def test_truncated_or_garbled_file(tmp_path, payload):
    path = _write(tmp_path, payload)
    with pytest.raises(UserError, match=re.escape(str(path)) + " is not a valid pickle.*Download it again"):
        load_pickle(path)


def test_truncated_real_batch(tmp_path):
    payload = py2_pickle(cifar10_batch())
    path = _write(tmp_path, payload[: len(payload) // 2])
    with pytest.raises(UserError, match="not a valid pickle"):
        load_pickle(path)


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(UserError, match=r"could not read pickle file .*nope.*check the path"):
        load_pickle(tmp_path / "nope")
    with pytest.raises(UserError, match="could not read pickle file"):
        load_pickle(tmp_path)
