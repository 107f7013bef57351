"""Versions and atomic installs of export.layout: a server never sees half a version."""

import os

import pytest

from ar2_tf.errors import UserError
from export import layout


def _fill(files):
    def write(folder):
        for name, text in files.items():
            with open(os.path.join(folder, name), "w") as file:
                file.write(text)
    return write


def _read(folder):
    return {name: open(os.path.join(folder, name)).read() for name in sorted(os.listdir(folder))}


def test_versions_count_up_from_one_and_ignore_other_folders(tmp_path):
    model_dir = tmp_path / "m"
    assert layout.choose_version(model_dir) == 1
    for name in ("1", "3", ".tmp-4-ab", "notes", "10a"):
        (model_dir / name).mkdir(parents=True)
    (model_dir / "7").write_text("a file, not a version")
    assert layout.existing_versions(model_dir) == [1, 3]
    assert layout.choose_version(model_dir) == 4


def test_existing_version_needs_force(tmp_path):
    (tmp_path / "2").mkdir()
    with pytest.raises(UserError, match="already exists; leave out `version`.*add `force`"):
        layout.choose_version(tmp_path, 2)
    assert layout.choose_version(tmp_path, 2, force=True) == 2
    assert layout.choose_version(tmp_path, 5) == 5
    for bad in (0, -1, "3", True):
        with pytest.raises(UserError, match="positive integer"):
            layout.choose_version(tmp_path, bad)


def test_write_version_installs_complete_folder_without_leftovers(tmp_path):
    path = layout.write_version(tmp_path / "m", 1, _fill({"saved_model.pb": "v1"}))
    assert path == str(tmp_path / "m" / "1")
    assert os.listdir(tmp_path / "m") == ["1"]
    assert _read(path) == {"saved_model.pb": "v1"}
    # A server running as another user must be able to read it (mkdtemp would give 0700).
    assert os.stat(path).st_mode & 0o055 == 0o055 & ~_umask()


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_new_version_leaves_the_old_one_untouched(tmp_path):
    first = layout.write_version(tmp_path, 1, _fill({"saved_model.pb": "v1"}))
    before = os.stat(os.path.join(first, "saved_model.pb"))
    second = layout.write_version(tmp_path, layout.choose_version(tmp_path), _fill({"saved_model.pb": "v2"}))
    assert second.endswith("2")
    assert _read(first) == {"saved_model.pb": "v1"}
    assert os.stat(os.path.join(first, "saved_model.pb")).st_mtime_ns == before.st_mtime_ns


def test_crash_midway_leaves_no_visible_partial_version(tmp_path):
    seen = {}

    def crash(folder):
        _fill({"saved_model.pb": "half"})(folder)
        # While writing, the folder is hidden from TF Serving (not a number).
        seen["name"] = os.path.basename(folder)
        seen["versions"] = layout.existing_versions(tmp_path)
        raise KeyboardInterrupt  # a crash, not a tidy error

    with pytest.raises(KeyboardInterrupt):
        layout.write_version(tmp_path, 1, crash)
    assert seen["name"].startswith(layout.TEMP_PREFIX) and not seen["name"].isdigit()
    assert seen["versions"] == []
    assert os.listdir(tmp_path) == []


def test_force_replaces_a_version_whole(tmp_path):
    layout.write_version(tmp_path, 1, _fill({"saved_model.pb": "old", "extra": "x"}))
    layout.write_version(tmp_path, 1, _fill({"saved_model.pb": "new"}), replace=True)
    assert _read(tmp_path / "1") == {"saved_model.pb": "new"}
    assert os.listdir(tmp_path) == ["1"]


def test_failed_replacement_keeps_the_old_version(tmp_path):
    layout.write_version(tmp_path, 1, _fill({"saved_model.pb": "old"}))

    def fail(folder):
        raise RuntimeError("verification failed")

    with pytest.raises(RuntimeError):
        layout.write_version(tmp_path, 1, fail, replace=True)
    assert _read(tmp_path / "1") == {"saved_model.pb": "old"}
    assert os.listdir(tmp_path) == ["1"]


def test_version_that_appears_meanwhile_is_not_overwritten(tmp_path):
    def racing(folder):
        _fill({"saved_model.pb": "mine"})(folder)
        layout.write_version(tmp_path, 1, _fill({"saved_model.pb": "theirs"}))  # another export wins

    with pytest.raises(UserError, match="appeared while exporting"):
        layout.write_version(tmp_path, 1, racing)
    assert _read(tmp_path / "1") == {"saved_model.pb": "theirs"}
    assert os.listdir(tmp_path) == ["1"]
