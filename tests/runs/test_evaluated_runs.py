"""A path given to the evaluation as a `ModelSpec`: a model file, or a finished run folder's model and report."""

import os

import pytest

from ar2_tf.errors import UserError
from ar2_tf.evaluation.model_spec import ModelSpec
from ar2_tf.runs.evaluated_runs import model_spec
from tests.helpers import tiny_classifier, write_run


def test_a_finished_run_folder_gives_its_model_preprocessing_and_config(tmp_path):
    run = write_run(tmp_path / "run", tiny_classifier(), preprocessing="caffe", method="ar2", corruption="fog")
    spec = model_spec(run)
    assert spec.path == os.path.join(os.path.abspath(run), "model.keras")
    assert (spec.label, spec.preprocessing, spec.folder) == ("ar2:fog", "caffe", run)
    assert spec.config["corruption"] == "fog"


def test_a_model_file_is_labelled_by_its_name(tmp_path):
    path = str(tmp_path / "vanilla.keras")
    tiny_classifier().save(path)
    assert model_spec(path) == ModelSpec(path, "vanilla")


def test_paths_that_are_no_model_are_refused_with_the_fix(tmp_path):
    with pytest.raises(UserError, match="folder without report.json"):
        model_spec(str(tmp_path))
    with pytest.raises(UserError, match="does not exist"):
        model_spec(str(tmp_path / "missing.keras"))
    with pytest.raises(UserError, match="evaluated through ar2_tf.runs.evaluated_runs.model_spec"):
        ModelSpec.of_file(str(tmp_path))  # the evaluation alone reads model files, not run folders
