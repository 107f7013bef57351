"""Tests of ar2_tf.safe_paths: unsafe names are refused or sanitised, joins never leave their root."""

import os
import re

import pytest

from ar2_tf.errors import UserError
from ar2_tf.safe_paths import MAX_NAME_LENGTH, safe_join, safe_name, sanitize_name

UNSAFE = [
    ("", "empty"),
    (".", "directory"),
    ("..", "directory"),
    ("../x", "separator"),
    ("../../etc/passwd", "separator"),
    ("..\\x", "separator"),
    ("..\\..\\windows", "separator"),
    ("a/b", "separator"),
    ("a\\b", "separator"),
    ("/etc", "separator"),
    ("/", "separator"),
    ("\\\\server\\share", "separator"),
    ("C:\\Windows", "separator"),
    ("C:evil", "absolute"),
    ("a\x00b", "NUL"),
    ("x\n", "control"),
    ("tab\there", "control"),
    ("~", "home"),
    ("~root", "home"),
    ("x" * (MAX_NAME_LENGTH + 1), "characters long"),
]
SAFE = ["fog", "gaussian_noise", "run-2024.01.01", "n01440764", "maple tree", "a..b", "...x", "x~", "caf\u00e9",
        "x" * MAX_NAME_LENGTH, ".hidden", "2024-01-01T12:00"]
SAFE_COMPONENT = re.compile(r"[A-Za-z0-9._-]+")


@pytest.mark.parametrize("name, reason", UNSAFE)
def test_safe_name_refuses(name, reason):
    with pytest.raises(UserError) as error:
        safe_name(name, "run name")
    message = str(error.value)
    assert message.startswith(f"run name {name!r} cannot be used as a file name")  # the kind and the value
    assert reason in message
    assert "not '.' or '..', no '/', '\\'" in message  # the allowed pattern


@pytest.mark.parametrize("name", SAFE)
def test_safe_name_accepts_plain_components(name):
    assert safe_name(name, "run name") == name


@pytest.mark.parametrize("value", [None, 3, b"fog", ["fog"]])
def test_safe_name_refuses_non_strings(value):
    with pytest.raises(UserError, match="corruption name must be a string"):
        safe_name(value, "corruption name")


@pytest.mark.parametrize("name, expected", [
    ("../x", "_x"),
    ("..\\x", "_x"),
    ("../../etc/passwd", "_.._etc_passwd"),  # one component: the dots are harmless inside it
    ("/etc/passwd", "_etc_passwd"),
    ("C:\\Windows\\system32", "C_Windows_system32"),
    ("~root", "_root"),
    ("maple tree", "maple_tree"),
    ("caf\u00e9 au lait", "cafe_au_lait"),
    ("a\x00b", "a_b"),
    ("a  /  b", "a_b"),
    (".hidden", "hidden"),
    ("trailing.", "trailing"),
    ("n01440764", "n01440764"),
    ("aquarium_fish", "aquarium_fish"),
    ("v1.2-beta", "v1.2-beta"),
    ("_", "_"),
    (7, "7"),
])
def test_sanitize_name(name, expected):
    assert sanitize_name(name) == expected


@pytest.mark.parametrize("name", ["", ".", "..", "...", " ", "/", "\\", "~", "\u03a9\u03bc\u03ad\u03b3\u03b1",
                                  "\u732b", "\x00", "./..", "\udcff"])
def test_sanitize_name_with_nothing_usable_is_still_a_safe_name(name):
    result = sanitize_name(name)
    assert re.fullmatch(r"_[0-9a-f]{8}", result)
    assert safe_name(result, "class name") == result


def test_sanitize_name_keeps_unusable_names_apart():
    names = ["", ".", "..", "\u03a9\u03bc\u03ad\u03b3\u03b1", "\u732b", "\u72ac"]
    assert len({sanitize_name(name) for name in names}) == len(names)


@pytest.mark.parametrize("name", [name for name, _ in UNSAFE] + SAFE + ["x" * 1000, "a/" * 200, "\u00e9" * 300])
def test_sanitize_name_output_is_always_safe_and_stable(name):
    result = sanitize_name(name)
    assert SAFE_COMPONENT.fullmatch(result)
    assert result not in (".", "..") and not result.startswith(".")
    assert len(result) <= 128
    assert safe_name(result, "class name") == result
    assert sanitize_name(result) == result  # idempotent


def test_safe_join_inside_root(tmp_path):
    assert safe_join(tmp_path, "runs", "fog", "model.keras") == tmp_path.resolve() / "runs" / "fog" / "model.keras"
    assert safe_join(tmp_path) == tmp_path.resolve()
    assert safe_join(str(tmp_path), "a") == tmp_path.resolve() / "a"  # str roots work too
    assert not (tmp_path / "runs").exists()  # joining creates nothing


@pytest.mark.parametrize("name", ["..", "../x", "..\\x", "/etc", "a/b", "~", "", "C:x"])
def test_safe_join_refuses_unsafe_components(tmp_path, name):
    with pytest.raises(UserError, match=r"path component .* cannot be used as a file name"):
        safe_join(tmp_path, "runs", name)


def test_safe_join_refuses_symlink_escape(tmp_path):
    root, outside = tmp_path / "out", tmp_path / "elsewhere"
    root.mkdir()
    outside.mkdir()
    os.symlink(outside, root / "link")
    with pytest.raises(UserError, match=r"resolves to .*elsewhere.*outside the output directory .*Remove the link"):
        safe_join(root, "link", "model.keras")
    os.symlink("/etc/passwd", root / "file_link")
    with pytest.raises(UserError, match="outside the output directory"):
        safe_join(root, "file_link")


def test_safe_join_allows_symlink_that_stays_inside(tmp_path):
    (tmp_path / "real").mkdir()
    os.symlink(tmp_path / "real", tmp_path / "alias")
    assert safe_join(tmp_path, "alias", "x") == tmp_path.resolve() / "real" / "x"


def test_safe_join_root_that_is_itself_a_symlink(tmp_path):
    (tmp_path / "real").mkdir()
    os.symlink(tmp_path / "real", tmp_path / "root_link")
    assert safe_join(tmp_path / "root_link", "x") == tmp_path.resolve() / "real" / "x"


def test_safe_join_symlink_loop(tmp_path):
    os.symlink(tmp_path / "b", tmp_path / "a")
    os.symlink(tmp_path / "a", tmp_path / "b")
    with pytest.raises(UserError, match="symbolic link"):
        safe_join(tmp_path, "a", "x")
