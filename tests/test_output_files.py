"""Claiming an output folder: the one place that refuses to mix two runs, searches or shard sets."""

import json

import pytest

from ar2_tf.errors import UserError
from ar2_tf.output_files import claim_folder
from ar2_tf.runs.run_folder import RunFolder


def test_same_identity_reopens_different_is_refused_and_force_discards_only_the_outputs(tmp_path):
    out = tmp_path / "out"
    claim_folder(out, "id.json", {"a": 1, "b": 2}, outputs=("result",), key="config")
    (out / "result").write_text("r")
    (out / "keep").write_text("k")
    claim_folder(out, "id.json", {"a": 1, "b": 2}, outputs=("result",), key="config")
    assert (out / "result").exists()
    with pytest.raises(UserError, match=r"holds a different thing \(changed: b\)\. Use another `out`, or `force`"):
        claim_folder(out, "id.json", {"a": 1, "b": 3}, outputs=("result",), what="thing", key="config")
    claim_folder(out, "id.json", {"a": 1, "b": 3}, outputs=("result",), force=True, key="config")
    assert not (out / "result").exists() and (out / "keep").exists()
    assert json.loads((out / "id.json").read_text())["config"] == {"a": 1, "b": 3}


def test_a_predicate_names_the_outputs_and_the_identity_can_be_the_whole_file(tmp_path):
    claim_folder(tmp_path, "manifest.json", {"n": 1}, outputs=lambda name: name.startswith("train-"))
    (tmp_path / "train-0").write_text("x")
    (tmp_path / "other").write_text("y")
    claim_folder(tmp_path, "manifest.json", {"n": 2}, outputs=lambda name: name.startswith("train-"), force=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["manifest.json", "other"]
    assert json.loads((tmp_path / "manifest.json").read_text()) == {"n": 2}


def test_run_folder_reads_only_finished_runs(tmp_path):
    run = RunFolder(tmp_path / "run").claim({"seed": 0})
    assert not run.finished and run.read_before() is None
    with pytest.raises(UserError, match="it is not a finished run"):
        run.read_report()
    run.write_before({"clean": 1.0})
    run.write_report({"after": {}})
    assert run.finished and run.read_report() == {"after": {}} and run.read_before() == {"clean": 1.0}
    (tmp_path / "run" / "report.json").write_text("{not json")
    with pytest.raises(UserError, match="could not read"):
        run.read_report()


def test_forcing_another_run_into_a_run_folder_discards_its_last_phase_too(tmp_path):
    """A last_phase.keras left from the run before would be evaluated as the new run's last epoch."""
    from ar2_tf.runs import run_folder

    RunFolder(tmp_path / "run").claim({"seed": 0})
    for name in (run_folder.MODEL, run_folder.LAST_PHASE, run_folder.PRETRAINED):
        (tmp_path / "run" / name).write_text("weights")
    RunFolder(tmp_path / "run").claim({"seed": 1}, force=True)
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == [run_folder.CONFIG, run_folder.PRETRAINED]
