"""The serving graph (export.serving_module) on a tiny classifier: resizing as in training, CAMs, input checks."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from ar2_tf.data import sources as datasets
from export.serving_module import ServingModule, check_images
from tests.helpers import tiny_classifier


@pytest.fixture(scope="module")
def names_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("names") / "class_names.txt"
    path.write_text("".join(f"class {i}\n" for i in range(4)))
    return str(path)


@pytest.fixture(scope="module")
def model():
    return tiny_classifier(num_classes=4, input_shape=(16, 16, 3))


def _images(shape, seed=0):
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def test_resize_matches_the_training_pipeline(model, names_file):
    module = ServingModule(model, names_file, preprocessing="unit", resize="resize")
    images = _images((3, 40, 28, 3))
    expected = np.stack([datasets.resize_uint8(image, 16).numpy() for image in images])
    np.testing.assert_array_equal(module.resize(images).numpy(), expected)
    same = _images((2, 16, 16, 3), seed=1)
    np.testing.assert_array_equal(module.resize(same).numpy(), same)  # no resampling at the input size


def test_center_crop_matches_the_training_pipeline(model, names_file):
    module = ServingModule(model, names_file, preprocessing="torch", resize="center_crop")
    images = _images((2, 30, 50, 3))
    expected = np.stack([datasets.center_crop(image, 16).numpy() for image in images])
    np.testing.assert_array_equal(module.resize(images).numpy(), expected)


def test_outputs_are_named_and_consistent(model, names_file):
    module = ServingModule(model, names_file, preprocessing="unit", resize="resize")
    images = _images((5, 16, 16, 3))
    out = {key: value.numpy() for key, value in module.serving_default(tf.constant(images)).items()}
    assert set(out) == {"probabilities", "classes", "top_k_classes", "top_k_scores", "class_names"}
    expected = model(images.astype(np.float32) / 255.0).numpy()
    np.testing.assert_allclose(out["probabilities"], expected, atol=1e-6)
    np.testing.assert_array_equal(out["classes"], expected.argmax(-1))
    assert out["top_k_classes"].shape == (5, 4)  # k = min(5, classes)
    np.testing.assert_array_equal(out["top_k_classes"][:, 0], out["classes"])
    np.testing.assert_allclose(out["top_k_scores"], -np.sort(-expected, axis=-1), atol=1e-6)
    assert [name.decode() for name in out["class_names"]] == [f"class {c}" for c in out["classes"]]
    preprocessed = module.predict_preprocessed(tf.constant(images, tf.float32) / 255.0)
    np.testing.assert_array_equal(preprocessed["classes"].numpy(), out["classes"])


def test_logits_model_gets_a_softmax(names_file):
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, name="features")(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    logits_model = keras.Model(inputs, keras.layers.Dense(4, name="classes")(x))
    module = ServingModule(logits_model, names_file, preprocessing="unit", resize="resize")
    images = _images((2, 8, 8, 3))
    probabilities = module.serving_default(tf.constant(images))["probabilities"].numpy()
    expected = tf.nn.softmax(logits_model(images.astype(np.float32) / 255.0)).numpy()
    np.testing.assert_allclose(probabilities, expected, atol=1e-6)


def test_cam_is_the_predicted_class_map_at_request_resolution(model, names_file):
    module = ServingModule(model, names_file, preprocessing="unit", resize="resize")
    images = _images((2, 16, 16, 3))
    out = module.cam(tf.constant(images))
    features = keras.Model(model.inputs[0], model.get_layer("features").output)(images / 255.0).numpy()
    kernel = model.get_layer("classes").kernel.numpy()
    classes = out["classes"].numpy()
    low = np.stack([features[i] @ kernel[:, classes[i]] for i in range(2)])  # Eq. 1 by hand
    expected = tf.image.resize(low[..., None], (16, 16), method="bilinear")[..., 0].numpy()
    assert out["cam"].shape == (2, 16, 16)
    np.testing.assert_allclose(out["cam"].numpy(), expected, rtol=1e-4, atol=1e-5)


def test_center_crop_cam_covers_the_crop_only(model, names_file):
    module = ServingModule(model, names_file, preprocessing="unit", resize="center_crop")
    cam = module.cam(tf.constant(_images((1, 16, 32, 3))))["cam"].numpy()
    # The 16x16 crop of this 16x32 image spans columns ~9-23; outside it nothing was seen.
    assert cam.shape == (1, 16, 32)
    assert not cam[..., :8].any() and not cam[..., 24:].any()
    assert np.abs(cam[..., 10:22]).max() > 0


def test_model_without_a_head_exports_without_cam(names_file):
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Concatenate()([keras.layers.Flatten()(keras.layers.Conv2D(2, 3)(inputs)),
                                    keras.layers.Flatten()(keras.layers.Conv2D(2, 5)(inputs))])
    model = keras.Model(inputs, keras.layers.Dense(4, activation="softmax")(x))
    module = ServingModule(model, names_file, preprocessing="unit", resize="resize")
    assert not module.has_cam and "cannot find the last feature map" in module.cam_unavailable
    assert set(module.signatures()) == {"serving_default", "predict_preprocessed"}


@pytest.mark.parametrize("shape, message", [
    ((2, 16, 16), "not compatible with expected shape"),
    ((16, 16, 3), "not compatible with expected shape"),
    ((1, 16, 16, 4), "not compatible with expected shape"),
    ((1, 65, 8, 3), "image too large"),
    ((1, 8, 65, 3), "image too large"),
    ((1, 0, 8, 3), "at least 1x1"),
    ((5, 8, 8, 3), "too many images"),
])
def test_check_images_rejects_bad_batches(shape, message):
    with pytest.raises(tf.errors.InvalidArgumentError, match=message):
        check_images(tf.zeros(shape, tf.uint8), max_image_size=64, max_batch_size=4)


def test_check_images_accepts_the_bounds_and_refuses_floats():
    images = tf.zeros((4, 64, 64, 3), tf.uint8)
    assert check_images(images, max_image_size=64, max_batch_size=4).shape == (4, 64, 64, 3)
    with pytest.raises(TypeError, match="uint8"):
        check_images(tf.zeros((1, 8, 8, 3)), max_image_size=64)



def test_the_signatures_call_one_traced_network(model, names_file):
    module = ServingModule(model, names_file, preprocessing="unit", resize="resize")
    assert set(module.signatures()) == {"serving_default", "predict_preprocessed", "cam"}
    for signature in module.signatures().values():  # each calls `network`; none traces the model again
        operations = signature.get_concrete_function().graph.get_operations()
        assert not any(op.type == "Conv2D" for op in operations)
        assert any(op.type == "StatefulPartitionedCall" for op in operations)
    network = module.network.get_concrete_function().graph.get_operations()
    assert sum(op.type == "Conv2D" for op in network) == sum(isinstance(layer, keras.layers.Conv2D)
                                                              for layer in model.layers)


def test_the_saved_model_holds_one_copy_of_the_network(model, names_file, tmp_path):
    from tensorflow.core.protobuf import saved_model_pb2

    module = ServingModule(model, names_file, preprocessing="unit", resize="resize")
    tf.saved_model.save(module, str(tmp_path), signatures=module.signatures())
    saved = saved_model_pb2.SavedModel()
    saved.ParseFromString((tmp_path / "saved_model.pb").read_bytes())
    library = saved.meta_graphs[0].graph_def.library.function
    convolutions = sum(node.op == "Conv2D" for function in library for node in function.node_def)
    assert convolutions == sum(isinstance(layer, keras.layers.Conv2D) for layer in model.layers)
    reloaded = tf.saved_model.load(str(tmp_path)).signatures["serving_default"]  # and its weights with it
    images = _images((2, 16, 16, 3))
    np.testing.assert_array_equal(reloaded(images=tf.constant(images))["probabilities"].numpy(),
                                  module.serving_default(tf.constant(images))["probabilities"].numpy())


def test_the_served_network_has_its_batchnorm_folded_and_the_same_outputs(names_file):
    """Conv -> BatchNorm -> ReLU pairs fold into the convolution (the evaluation's fold): no BatchNorm maths in
    the traced network, the model's probabilities and CAMs to float rounding, the model itself unchanged."""
    from tests.helpers import with_batchnorm_statistics

    keras.utils.set_random_seed(0)
    inputs = keras.Input((16, 16, 3))
    x = inputs
    for index, filters in enumerate((8, 12)):
        x = keras.layers.Conv2D(filters, 3, padding="same", use_bias=index == 1, name=f"conv{index}")(x)
        x = keras.layers.ReLU()(keras.layers.BatchNormalization(name=f"bn{index}")(x))
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = with_batchnorm_statistics(keras.Model(inputs, keras.layers.Dense(4, activation="softmax")(x)))
    weights = [w.copy() for w in model.get_weights()]
    images = _images((3, 16, 16, 3))
    served = {fold: ServingModule(model, names_file, preprocessing="unit", resize="resize", fold=fold)
              for fold in (True, False)}
    graphs = {fold: {op.type for op in module.network.get_concrete_function().graph.get_operations()}
              for fold, module in served.items()}
    assert "Rsqrt" in graphs[False] and "Rsqrt" not in graphs[True]
    expected = model(images.astype(np.float32) / 255.0).numpy()
    assert np.abs(expected - 0.25).max() > 0.05  # the statistics matter: a fold that dropped them would show
    for module in served.values():
        np.testing.assert_allclose(module.serving_default(tf.constant(images))["probabilities"].numpy(), expected,
                                   atol=1e-5)
    np.testing.assert_allclose(served[True].cam(tf.constant(images))["cam"].numpy(),
                               served[False].cam(tf.constant(images))["cam"].numpy(), rtol=1e-4, atol=1e-4)
    for before, after in zip(weights, model.get_weights()):
        np.testing.assert_array_equal(before, after)
