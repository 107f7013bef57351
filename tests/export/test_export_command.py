"""End to end on the real pretrained ResNet-20 and real CIFAR-10 images: python -m export as TF Serving sees it.

One export (module scope) is shared by every test: layout and models.config,
signature contents, predictions against the Keras model, rejected inputs, and
the request formats documented in the serving guide (docs/guide/serving.md), sent through a real gRPC
server and a REST decoder that follows TF Serving's JSON rules.
"""

import http.server
import json
import os
import re
import threading
from concurrent import futures

import grpc
import numpy as np
import pytest
import tensorflow as tf
from google.protobuf import text_format
from tensorflow.core.framework import types_pb2
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc
from tensorflow_serving.config import model_server_config_pb2

from ar2_tf.data import sources as datasets
from export.exporter import ExportOptions, export_runs
from export.verify import signature_summary
from tests.helpers import CIFAR10_EXACT, ROOT

NAME = "ar2_cifar10_gaussian_noise"
DOCS = os.path.join(ROOT, "docs", "guide", "serving.md")
OUTPUTS = {"probabilities", "classes", "top_k_classes", "top_k_scores", "class_names"}


@pytest.fixture(scope="module")
def cifar(cifar10_test, cifar10_class_names):
    """The first 64 original-pixel test images and the class names."""
    return cifar10_test[0][:64], cifar10_class_names


@pytest.fixture(scope="module")
def run_folder(resnet20, cifar, tmp_path_factory):
    """A finished run folder around the shared ResNet-20, as python -m ar2_tf.train writes it."""
    folder = tmp_path_factory.mktemp("runs") / "resnet20"
    folder.mkdir()
    resnet20.save(folder / "model.keras")
    config = {"dataset": "cifar10", "data_dir": os.path.abspath(CIFAR10_EXACT), "corruption": "gaussian_noise",
              "method": "ar2", "severity": 3, "seed": 0, "image_size": None}
    report = {"config": config, "preprocessing": "unit", "class_names": cifar[1], "input_shape": [32, 32, 3],
              "before": {}, "after": {}}
    (folder / "report.json").write_text(json.dumps(report))
    return str(folder)


@pytest.fixture(scope="module")
def serving(run_folder, tmp_path_factory):
    out = tmp_path_factory.mktemp("serving")
    printed = []
    results = export_runs([run_folder], out, options=ExportOptions(base_path="/models"), log=printed.append)
    return out, results, "\n".join(printed)


@pytest.fixture(scope="module")
def loaded(serving):
    return tf.saved_model.load(str(serving[0] / NAME / "1"))


def _run(loaded, signature="serving_default", **inputs):
    outputs = loaded.signatures[signature](**{key: tf.constant(value) for key, value in inputs.items()})
    return {key: value.numpy() for key, value in outputs.items()}


def test_layout_and_models_config(serving, cifar):
    out, results, _ = serving
    assert sorted(os.listdir(out)) == [".models.config.lock", NAME, "models.config"]
    version = out / NAME / "1"
    assert os.listdir(out / NAME) == ["1"]
    assert {"saved_model.pb", "variables", "assets", "assets.extra"} <= set(os.listdir(version))
    assert (version / "assets" / "class_names.txt").read_text().splitlines() == cifar[1]
    config = model_server_config_pb2.ModelServerConfig()
    text_format.Parse((out / "models.config").read_text(), config)
    [entry] = config.model_config_list.config
    assert (entry.name, entry.base_path, entry.model_platform) == (NAME, f"/models/{NAME}", "tensorflow")
    assert results[0]["checked"] == ["serving_default", "predict_preprocessed", "serving_default at 2x size", "cam"]


def test_signature_contents(serving):
    out, _, printed = serving
    summary = signature_summary(str(out / NAME / "1"))
    assert summary in printed
    assert "signature_def['serving_default']:\n  The given SavedModel SignatureDef contains the following input(s):\n" \
           "    inputs['images'] tensor_info:\n        dtype: DT_UINT8\n        shape: (-1, -1, -1, 3)" in summary
    assert "inputs['inputs'] tensor_info:\n        dtype: DT_FLOAT\n        shape: (-1, 32, 32, 3)" in summary
    from tensorflow.core.protobuf import saved_model_pb2

    saved_model = saved_model_pb2.SavedModel.FromString((out / NAME / "1" / "saved_model.pb").read_bytes())
    signatures = saved_model.meta_graphs[0].signature_def
    assert set(signatures["serving_default"].outputs) == OUTPUTS
    assert set(signatures["predict_preprocessed"].outputs) == OUTPUTS
    assert set(signatures["cam"].outputs) == OUTPUTS | {"cam"}
    outputs = signatures["serving_default"].outputs
    assert outputs["classes"].dtype == types_pb2.DT_INT64 and outputs["class_names"].dtype == types_pb2.DT_STRING
    assert [d.size for d in outputs["top_k_scores"].tensor_shape.dim] == [-1, 5]
    assert signatures["serving_default"].method_name == "tensorflow/serving/predict"


def test_both_signatures_match_keras_on_real_images(loaded, resnet20, cifar, cifar10_test):
    images, names = cifar
    expected = resnet20([images.astype(np.float32) / 255.0]).numpy()
    assert (expected.argmax(-1) == cifar10_test[1][:64]).mean() > 0.85  # the real, trained model
    served = _run(loaded, images=images)
    preprocessed = _run(loaded, "predict_preprocessed", inputs=images.astype(np.float32) / 255.0)
    for out in (served, preprocessed):
        np.testing.assert_allclose(out["probabilities"], expected, atol=1e-5)
        np.testing.assert_array_equal(out["classes"], expected.argmax(-1))
        assert [name.decode() for name in out["class_names"]] == [names[c] for c in expected.argmax(-1)]
        np.testing.assert_array_equal(out["top_k_classes"], np.argsort(-expected, axis=-1)[:, :5])


def test_any_size_images_are_resized_as_in_training(loaded, resnet20, cifar):
    images = cifar[0][:8]
    large = tf.image.resize(images, (75, 50), method="nearest").numpy()
    resized = np.stack([datasets.resize_uint8(image, 32).numpy() for image in large])
    expected = resnet20([resized.astype(np.float32) / 255.0]).numpy()
    np.testing.assert_allclose(_run(loaded, images=large)["probabilities"], expected, atol=1e-5)


def test_cam_is_at_request_resolution_and_explains_the_prediction(loaded, cifar):
    images = tf.image.resize(cifar[0][:4], (64, 48), method="nearest").numpy()
    out = _run(loaded, "cam", images=images)
    assert out["cam"].shape == (4, 64, 48) and np.isfinite(out["cam"]).all()
    np.testing.assert_array_equal(out["classes"], _run(loaded, images=images)["classes"])


@pytest.mark.parametrize("images, message", [
    (np.zeros((2, 32, 32), np.uint8), "not compatible with expected shape"),  # rank 3: once aborted the process
    (np.zeros((32, 32, 3), np.uint8), "not compatible with expected shape"),  # one image without a batch axis
    (np.zeros((1, 32, 32, 4), np.uint8), "not compatible with expected shape"),  # RGBA
    (np.zeros((1, 32, 32, 3), np.float32), "expected to be a uint8 tensor but is a float"),
    (np.zeros((1, 4097, 2, 3), np.uint8), "image too large"),
    (np.zeros((1, 2, 4097, 3), np.uint8), "image too large"),
    (np.zeros((65, 2, 2, 3), np.uint8), "too many images"),
])
def test_bad_inputs_are_rejected(loaded, images, message):
    for signature in ("serving_default", "cam"):
        with pytest.raises(tf.errors.InvalidArgumentError, match=message):
            _run(loaded, signature, images=images)


def test_bounds_are_inclusive_and_preprocessed_inputs_are_checked(loaded):
    assert _run(loaded, images=np.zeros((1, 4096, 2, 3), np.uint8))["probabilities"].shape == (1, 10)
    with pytest.raises(tf.errors.InvalidArgumentError, match="not compatible with expected shape"):
        _run(loaded, "predict_preprocessed", inputs=np.zeros((2, 32, 32), np.float32))


# The request formats of the serving guide (docs/guide/serving.md).


def _docs_blocks(language):
    return re.findall(rf"```{language}\n(.*?)```", open(DOCS).read(), re.S)


def _docs_python(first_line):
    [block] = [block for block in _docs_blocks("python") if block.startswith(first_line)]
    return block


def _json_to_request(body, signature_defs):
    """A PredictRequest from a REST body, following TF Serving's json_tensor.cc (row and columnar formats)."""
    request = predict_pb2.PredictRequest()
    request.model_spec.signature_name = body.get("signature_name", "serving_default")
    inputs = signature_defs[request.model_spec.signature_name].inputs
    if ("instances" in body) == ("inputs" in body):
        raise ValueError("expecting exactly one of 'inputs' or 'instances'")
    if "instances" in body:
        rows = body["instances"]
        named = isinstance(rows[0], dict)
        values = {name: [row[name] for row in rows] if named else rows for name in inputs}
    else:
        columns = body["inputs"]
        values = columns if isinstance(columns, dict) else {name: columns for name in inputs}
    for name, info in inputs.items():
        value = np.array(values[name], dtype=object)
        leaves = value.reshape(-1)
        if info.dtype == types_pb2.DT_UINT8 and not all(type(v) is int for v in leaves):
            bad = next(v for v in leaves if type(v) is not int)
            raise ValueError(f"JSON Value: {bad} is not of expected type: uint8")
        dtype = tf.dtypes.as_dtype(info.dtype).as_numpy_dtype
        request.inputs[name].CopyFrom(tf.make_tensor_proto(value.astype(dtype)))
    return request


@pytest.fixture(scope="module")
def signature_defs(serving):
    from tensorflow.core.protobuf import saved_model_pb2

    saved_model = saved_model_pb2.SavedModel.FromString((serving[0] / NAME / "1" / "saved_model.pb").read_bytes())
    return saved_model.meta_graphs[0].signature_def


def _predict(loaded, request):
    inputs = {name: tf.make_ndarray(proto) for name, proto in request.inputs.items()}
    return _run(loaded, request.model_spec.signature_name or "serving_default", **inputs)


def test_documented_json_bodies_decode_to_uint8_images(loaded, signature_defs):
    bodies = [json.loads(block) for block in _docs_blocks("json") if '"instances"' in block or '"inputs"' in block]
    assert len(bodies) >= 2
    for body in bodies:
        request = _json_to_request(body, signature_defs)
        images = tf.make_ndarray(request.inputs["images"])
        assert images.dtype == np.uint8 and images.ndim == 4 and images.shape[-1] == 3
        assert set(_predict(loaded, request)) >= OUTPUTS
    with pytest.raises(ValueError, match="not of expected type: uint8"):
        _json_to_request({"instances": [[[[0.5, 0, 0]]]]}, signature_defs)


class _FakeRestServer(http.server.BaseHTTPRequestHandler):
    """POST /v1/models/NAME:predict, answered like TF Serving's row format from the loaded SavedModel."""

    loaded = signature_defs = None

    def do_POST(self):  # noqa: N802 - http.server's name
        assert self.path == f"/v1/models/{NAME}:predict"
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        outputs = _predict(self.loaded, _json_to_request(body, self.signature_defs))
        rows = [{key: (value[i].decode() if value.dtype == object else value[i].tolist())
                 for key, value in outputs.items()} for i in range(len(outputs["classes"]))]
        reply = json.dumps({"predictions": rows}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, *args):
        pass


def _save_png(path, image):
    path.write_bytes(tf.io.encode_png(image).numpy())


def test_documented_rest_client(loaded, signature_defs, cifar, tmp_path, capsys):
    _FakeRestServer.loaded, _FakeRestServer.signature_defs = loaded, signature_defs
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _FakeRestServer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _save_png(tmp_path / "cat.png", cifar[0][0])
    code = _docs_python("# rest_client.py")
    code = code.replace('"http://localhost:8501"', f'"http://127.0.0.1:{server.server_address[1]}"')
    code = code.replace('"cat.png"', repr(str(tmp_path / "cat.png")))
    try:
        exec(compile(code, "rest_client.py", "exec"), {})
    finally:
        server.shutdown()
        server.server_close()
    expected = _run(loaded, images=cifar[0][:1])
    assert capsys.readouterr().out.startswith(expected["class_names"][0].decode())


class _FakePredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):
    def __init__(self, loaded):
        self.loaded = loaded

    def Predict(self, request, context):  # noqa: N802 - the gRPC method name
        assert request.model_spec.name == NAME
        response = predict_pb2.PredictResponse()
        response.model_spec.CopyFrom(request.model_spec)
        for key, value in _predict(self.loaded, request).items():
            response.outputs[key].CopyFrom(tf.make_tensor_proto(value))
        return response


def test_documented_grpc_client(loaded, cifar, tmp_path, capsys):
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(_FakePredictionService(loaded), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    image = tf.image.resize(cifar[0][1:2], (96, 128), method="nearest").numpy()[0]
    _save_png(tmp_path / "cat.png", image)
    code = _docs_python("# grpc_client.py")
    code = code.replace('"localhost:8500"', f'"127.0.0.1:{port}"').replace('"cat.png"', repr(str(tmp_path / "cat.png")))
    try:
        exec(compile(code, "grpc_client.py", "exec"), {})
    finally:
        server.stop(None)
    expected = _run(loaded, images=image[None])
    assert capsys.readouterr().out.startswith(expected["class_names"][0].decode())
