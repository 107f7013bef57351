"""`models.config`: TF Serving's `model_config_list`, merged with what is already there.

The file lists every model ever exported to the folder, for
`tensorflow_model_server --model_config_file=serving/models.config`:

    model_config_list {
      config {
        name: "ar2_cifar10_gaussian_noise"
        base_path: "/abs/path/serving/ar2_cifar10_gaussian_noise"
        model_platform: "tensorflow"
      }
    }

It is read and written with TF Serving's own `ModelServerConfig` proto, so it
always parses. Entries already present are kept as they are (a hand-edited
base path or version policy survives); new models are appended. Writes go
through a temporary file and a rename, under a lock so two exports into the
same folder do not lose each other's entries.
"""

import contextlib
import os
import secrets

from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2

from ar2_tf.errors import UserError

CONFIG_FILE = "models.config"


def read_models_config(path) -> model_server_config_pb2.ModelServerConfig:
    """Parses a models.config file (an empty config if it does not exist).

    Raises:
        UserError: the file is not a valid `model_config_list` text proto.
    """
    config = model_server_config_pb2.ModelServerConfig()
    if not os.path.exists(path):
        return config
    try:
        with open(path) as file:
            text_format.Parse(file.read(), config)
    except (OSError, UnicodeDecodeError, text_format.ParseError) as error:
        raise UserError(f"cannot merge into {path!r}: it is not a valid TF Serving model config ({error}). "
                        "Fix or move it, then export again.") from None
    if config.WhichOneof("config") == "custom_model_config":
        raise UserError(f"{path!r} holds a custom_model_config; export only writes model_config_list files.")
    return config


def add_models(path, base_paths: dict) -> model_server_config_pb2.ModelServerConfig:
    """Adds models {name: base_path} to the config at `path` (created if missing) and writes it.

    Returns:
        the config as written.
    """
    with _locked(path):
        config = read_models_config(path)
        present = {entry.name for entry in config.model_config_list.config}
        for name, base_path in base_paths.items():
            if name not in present:
                entry = config.model_config_list.config.add()
                entry.name = name
                entry.base_path = base_path
                entry.model_platform = "tensorflow"
        _write_atomic(path, text_format.MessageToString(config))
    return config


def _write_atomic(path, text):
    # os.open, not tempfile: mode 0666 minus the umask, so a server running as another user can read it.
    temporary = f"{path}.{secrets.token_hex(4)}.tmp"
    with os.fdopen(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), "w") as file:
        file.write(text)
        file.flush()
        os.fsync(file.fileno())
    os.replace(temporary, path)


@contextlib.contextmanager
def _locked(path):
    try:
        import fcntl
    except ImportError:  # Windows: no advisory locks; concurrent exports there may race
        yield
        return
    with open(os.path.join(os.path.dirname(os.path.abspath(path)), f".{CONFIG_FILE}.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
