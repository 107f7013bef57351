"""models.config: TF Serving's own proto parses it, and merging keeps every model ever exported."""

import os

import pytest
from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2

from ar2_tf.errors import UserError
from export import model_config


def _parse(path):
    config = model_server_config_pb2.ModelServerConfig()
    text_format.Parse(open(path).read(), config)
    return {entry.name: entry for entry in config.model_config_list.config}


def test_new_config_parses_with_the_serving_proto(tmp_path):
    path = tmp_path / model_config.CONFIG_FILE
    model_config.add_models(path, {"ar2_cifar10_gaussian_noise": "/srv/ar2_cifar10_gaussian_noise"})
    entries = _parse(path)
    assert list(entries) == ["ar2_cifar10_gaussian_noise"]
    entry = entries["ar2_cifar10_gaussian_noise"]
    assert (entry.base_path, entry.model_platform) == ("/srv/ar2_cifar10_gaussian_noise", "tensorflow")
    assert open(path).read().startswith("model_config_list {")


def test_merge_keeps_existing_entries_and_their_settings(tmp_path):
    path = tmp_path / model_config.CONFIG_FILE
    path.write_text('model_config_list { config { name: "mine" base_path: "/models/mine" model_platform: '
                    '"tensorflow" model_version_policy { all {} } } }\n')
    model_config.add_models(path, {"a": "/x/a"})
    model_config.add_models(path, {"b": "/x/b", "a": "/elsewhere/a", "mine": "/y/mine"})
    entries = _parse(path)
    assert list(entries) == ["mine", "a", "b"]
    assert entries["mine"].base_path == "/models/mine"
    assert entries["mine"].model_version_policy.HasField("all")
    assert entries["a"].base_path == "/x/a"
    assert not [name for name in os.listdir(tmp_path) if name.endswith(".tmp")]


def test_invalid_existing_config_is_refused_not_overwritten(tmp_path):
    path = tmp_path / model_config.CONFIG_FILE
    path.write_text("model_config_list { config { name: 'x' ")
    with pytest.raises(UserError, match="not a valid TF Serving model config"):
        model_config.add_models(path, {"a": "/x/a"})
    assert path.read_text() == "model_config_list { config { name: 'x' "
