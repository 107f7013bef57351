"""Model loading and building: the architectures, and clear errors for bad model files."""

import keras
import numpy as np
import pytest

from ar2_tf.errors import UserError
from ar2_tf.models import architectures, checks, loading, two_class
from tests.helpers import RESNET20, needs_resnet20, tiny_classifier


@pytest.mark.parametrize("name, layers", [("resnet8", 8), ("resnet20", 20), ("resnet32", 32)])
def test_cifar_resnets_have_the_paper_depth(name, layers):
    model = architectures.cifar_resnet(name, 10)
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)
             and not layer.name.endswith("proj")]
    dense = [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)]
    assert len(convs) + len(dense) == layers
    assert model.output_shape == (None, 10)


def test_resnet34_cifar_variant_shapes():
    model = architectures.cifar_resnet("resnet34", 100)
    assert model.get_layer("stage4_block3_out").output.shape[1:] == (4, 4, 512)
    assert model.output_shape == (None, 100)


@needs_resnet20
def test_loads_the_shared_h5_model():
    model = loading.load_model_file(RESNET20)
    assert model.output_shape == (None, 10)


def test_keras_file_round_trip(tmp_path):
    model = tiny_classifier()
    path = str(tmp_path / "m.keras")
    model.save(path)
    x = np.ones((1, 16, 16, 3), np.float32)
    np.testing.assert_allclose(loading.load_model_file(path)(x), model(x), rtol=1e-6)


def test_bad_model_files(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        loading.load_model_file(str(tmp_path / "missing.h5"))
    corrupt = tmp_path / "corrupt.keras"
    corrupt.write_bytes(b"not a zip file")
    with pytest.raises(UserError, match="could not load model file"):
        loading.load_model_file(str(corrupt))
    saved = tmp_path / "saved"
    saved.mkdir()
    (saved / "saved_model.pb").write_bytes(b"")
    with pytest.raises(UserError, match="SavedModel"):
        loading.load_model_file(str(saved))


def test_not_a_classifier(tmp_path):
    inputs = keras.Input((8, 8, 3))
    model = keras.Model(inputs, keras.layers.Conv2D(2, 3)(inputs))
    path = str(tmp_path / "conv.keras")
    model.save(path)
    with pytest.raises(UserError, match="an image classifier maps"):
        loading.load_model_file(path)


def test_compatibility_with_the_data():
    model = tiny_classifier(num_classes=4)
    with pytest.raises(UserError, match="predicts 4 classes but the dataset has 10"):
        checks.check_compatible(model, 10, (16, 16))
    with pytest.raises(UserError, match="pass `image_size` 16"):
        checks.check_compatible(model, 4, (32, 32))
    checks.check_compatible(model, 4, (16, 16))
    wide = tiny_classifier(num_classes=4, input_shape=(16, 24, 3))  # --image-size 16 would not fit it either
    with pytest.raises(UserError, match=r"takes 16x24 images, not square ones.*keras.Input\(\(None, None, 3\)\)"):
        checks.check_compatible(wide, 4, (16, 16))


def test_unknown_architecture():
    with pytest.raises(UserError, match="unknown architecture"):
        architectures.build_model("vgg", 10, (32, 32, 3))


def test_custom_objects_import_a_file_or_module_once_and_name_what_failed(tmp_path):
    counter = tmp_path / "counted_layers.py"
    counter.write_text("import builtins\nbuiltins.ar2_imports = getattr(builtins, 'ar2_imports', 0) + 1\n")
    import builtins

    loading.import_custom_objects([str(counter), str(counter), "json"])  # a module name imports as usual
    assert builtins.ar2_imports == 1  # a file is imported once per process
    del builtins.ar2_imports

    broken = tmp_path / "broken_layers.py"
    broken.write_text("raise RuntimeError('missing weights file')\n")
    with pytest.raises(UserError, match=r"`custom_objects` .*broken_layers.py' could not be imported \(RuntimeError: "
                                        r"missing weights file\)"):
        loading.import_custom_objects([str(broken)])
    with pytest.raises(UserError, match="no such file"):
        loading.import_custom_objects([str(tmp_path / "absent.py")])
    with pytest.raises(UserError, match="No module named 'no_such_module_here'"):
        loading.import_custom_objects(["no_such_module_here"])


def test_the_input_shape_a_run_records_is_the_models_or_for_any_size_the_datas():
    assert checks.run_input_shape(tiny_classifier(input_shape=(16, 16, 3)), (16, 16)) == [16, 16, 3]
    flexible = tiny_classifier(input_shape=(None, None, 3))
    assert checks.run_input_shape(flexible, (40, 48)) == [40, 48, 3]
    assert checks.run_input_shape(flexible, None) == [None, None, 3]  # image folders of mixed sizes


@pytest.mark.parametrize("separate_sigmoid", [False, True])
@pytest.mark.parametrize("use_bias", [True, False])
def test_a_sigmoid_binary_classifier_converts_to_the_same_two_class_softmax(use_bias, separate_sigmoid):
    keras.utils.set_random_seed(0)
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(4, 3, activation="relu")(inputs))
    if separate_sigmoid:  # Dense(1) then Activation("sigmoid"), as in many tutorials
        outputs = keras.layers.Activation("sigmoid")(keras.layers.Dense(1, use_bias=use_bias)(x))
    else:
        outputs = keras.layers.Dense(1, activation="sigmoid", use_bias=use_bias)(x)
    binary = keras.Model(inputs, outputs)
    dense = [layer for layer in binary.layers if isinstance(layer, keras.layers.Dense)][0]
    dense.set_weights([w + 0.7 for w in dense.get_weights()])  # no zero bias, clear p
    with pytest.raises(UserError, match=r"one output unit .*two_class.as_two_class_softmax"):
        checks.check_compatible(binary, 2, (16, 16))
    two = two_class.as_two_class_softmax(binary)
    checks.check_compatible(two, 2, (16, 16))
    images = np.random.default_rng(1).uniform(0, 1, (5, 16, 16, 3)).astype(np.float32)
    p = binary(images).numpy()[:, 0]
    np.testing.assert_allclose(two(images).numpy(), np.stack([1 - p, p], axis=1), atol=1e-6)
    with pytest.raises(UserError, match="not a sigmoid binary classifier"):
        two_class.as_two_class_softmax(two)
    squashed = keras.layers.Activation("sigmoid")(keras.layers.Dense(1, activation="relu")(x))
    with pytest.raises(UserError, match="not a sigmoid binary classifier"):  # sigmoid(relu(z)) is no logit's
        two_class.as_two_class_softmax(keras.Model(inputs, squashed))


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_what_a_file_holds_is_read_from_its_recorded_architecture(tmp_path, suffix):
    """Python code and unregistered custom classes are found in the file's config, before Keras loads it."""
    @keras.saving.register_keras_serializable(package="test_recorded")
    class Halver(keras.layers.Layer):
        def call(self, x):
            return 0.5 * x

    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3)(Halver()(keras.layers.Lambda(lambda t: t + 1.0)(inputs)))
    path = str(tmp_path / f"model{suffix}")
    keras.Model(inputs, keras.layers.Dense(3)(keras.layers.GlobalAveragePooling2D()(x))).save(path)
    config = loading.recorded_config(path)
    assert loading.holds_python_code(config)
    assert loading.unregistered_objects(config) == []
    keras.saving.get_custom_objects().pop("test_recorded>Halver")
    assert loading.unregistered_objects(config) == ["test_recorded>Halver"]
    plain = str(tmp_path / f"plain{suffix}")
    tiny_classifier().save(plain)
    assert not loading.holds_python_code(loading.recorded_config(plain))
    assert loading.recorded_config(str(tmp_path / "absent.keras")) is None
