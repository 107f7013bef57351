"""Run folders as export reads them (export.finished_run): checks, model names that stay in their folder."""

import json
import os

import pytest

from ar2_tf.errors import UserError
from export.finished_run import check_model_name, model_name, read_run
from tests.helpers import RUN_CONFIG, tiny_classifier, write_run


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    return write_run(tmp_path_factory.mktemp("runs") / "tiny", tiny_classifier(num_classes=4))


def test_read_run(tiny_run):
    run = read_run(tiny_run)
    assert run.input_shape == (16, 16, 3) and run.class_names == tuple(f"class_{i}" for i in range(4))
    assert (run.preprocessing, run.resize) == ("unit", "resize")


def test_imagenet_style_runs_are_centre_cropped(tmp_path):
    run = read_run(write_run(tmp_path / "r", tiny_classifier(), dataset="imagenet", preprocessing="caffe"))
    assert run.resize == "center_crop"


@pytest.mark.parametrize("change, message", [
    (lambda report: report.update(class_names=["a", "b"]), "4 outputs but report.json names 2 classes"),
    (lambda report: report.update(input_shape=[32, 32, 3]), "does not match the model's"),
    (lambda report: report.update(preprocessing="magic"), "unknown preprocessing 'magic'"),
    (lambda report: report.pop("class_names"), "lacks class_names"),
])
def test_inconsistent_reports_are_refused(tiny_run, tmp_path, change, message):
    folder = tmp_path / "run"
    folder.mkdir()
    os.link(os.path.join(tiny_run, "model.keras"), folder / "model.keras")
    report = json.load(open(os.path.join(tiny_run, "report.json")))
    change(report)
    (folder / "report.json").write_text(json.dumps(report))
    with pytest.raises(UserError, match=message):
        read_run(str(folder))


def test_unfinished_or_missing_runs_are_refused(tmp_path):
    with pytest.raises(UserError, match="not a folder"):
        read_run(str(tmp_path / "nope"))
    (tmp_path / "unfinished").mkdir()
    (tmp_path / "unfinished" / "config.json").write_text("{}")
    with pytest.raises(UserError, match="not a finished run"):
        read_run(str(tmp_path / "unfinished"))


def test_model_names():
    assert model_name(RUN_CONFIG) == "ar2_cifar10_gaussian_noise"
    assert model_name({**RUN_CONFIG, "corruption": "all"}) == "ar2_cifar10_unified"
    assert model_name({**RUN_CONFIG, "method": "finetune", "dataset": "imagenet"}) == "finetune_imagenet_gaussian_noise"
    # Names from someone else's report.json cannot climb out of the serving folder.
    name = model_name({**RUN_CONFIG, "corruption": "../../etc/cron.d/x", "dataset": "/abs"})
    assert "/" not in name and ".." not in name and check_model_name(name) == name


@pytest.mark.parametrize("name", ["../x", "a/b", "..", ".hidden", "", "a b", "x:predict", "-x", "a" * 129])
def test_unsafe_model_names_are_refused(name):
    with pytest.raises(UserError):
        check_model_name(name)
