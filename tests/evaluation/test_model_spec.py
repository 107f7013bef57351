"""Model labels: distinct within an evaluation, and readable when files share a name."""

from ar2_tf.evaluation.model_spec import ModelSpec, unique_labels


def test_files_of_one_name_in_different_folders_take_their_folders_name():
    specs = [ModelSpec("/b/runs/ar2_fog/last_phase.keras", "last_phase"),
             ModelSpec("/b/runs/ar2_fog_seed1/last_phase.keras", "last_phase"),
             ModelSpec("/b/runs/ar2_fog/model.keras", "ar2:fog", folder="/b/runs/ar2_fog"),
             ModelSpec("/b/runs/ar2_fog_seed1/model.keras", "ar2:fog", folder="/b/runs/ar2_fog_seed1"),
             ModelSpec("/m/tiny.keras", "tiny")]
    assert [spec.label for spec in unique_labels(specs)] == [
        "ar2_fog/last_phase", "ar2_fog_seed1/last_phase", "ar2:fog", "ar2:fog#2", "tiny"]


def test_one_file_named_twice_is_numbered():
    specs = [ModelSpec("/m/tiny.keras", "tiny"), ModelSpec("/m/tiny.keras", "tiny")]
    assert [spec.label for spec in unique_labels(specs)] == ["tiny", "tiny#2"]
