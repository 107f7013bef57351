"""BatchNorm folding for inference: the folded copy computes what the model does, from every kind of
convolution, leaves what it cannot fold as it is, and never changes the model it copies. Every
keras.applications family folds to the same probabilities in tests/test_model_families.py."""

import keras
import numpy as np

from ar2_tf.models.batchnorm_folding import FoldedBatchNorm, fold_batchnorm
from tests.helpers import needs_resnet20, with_batchnorm_statistics

L = keras.layers


def _all_layers(model):
    for layer in model.layers:
        yield layer
        if isinstance(layer, keras.Model):
            yield from _all_layers(layer)


def _folded(model):
    return [layer for layer in _all_layers(model) if isinstance(layer, FoldedBatchNorm)]


def _every_kind():
    inputs = keras.Input((12, 12, 3))
    x = L.BatchNormalization()(L.Conv2D(8, 3, padding="same", use_bias=False)(inputs))  # folds, bias added
    x = L.ReLU()(x)
    x = L.BatchNormalization(scale=False)(L.DepthwiseConv2D(3, depth_multiplier=2, padding="same")(x))  # folds
    x = L.BatchNormalization(center=False)(L.SeparableConv2D(8, 3, padding="same")(x))  # folds (pointwise)
    skip = L.Conv2D(8, 1)(x)
    x = L.Add()([L.BatchNormalization()(skip), skip])  # the conv output is read twice: stays
    x = L.BatchNormalization()(L.Conv2D(8, 3, activation="relu", padding="same")(x))  # activation between: stays
    x = L.BatchNormalization()(L.ReLU()(x))  # no conv before: stays
    inner = keras.Sequential([keras.Input((12, 12, 8)), L.Conv2D(6, 3), L.BatchNormalization()])  # nested: folds
    plain = keras.Sequential([keras.Input((10, 10, 6)), L.Conv2D(6, 1, activation="relu")])  # nested, nothing to fold
    x = L.GlobalAveragePooling2D()(plain(inner(x)))
    return keras.Model(inputs, L.Dense(5, activation="softmax")(x))


def test_every_kind_of_convolution_folds_and_the_copy_computes_the_same():
    keras.utils.set_random_seed(0)
    model = with_batchnorm_statistics(_every_kind())
    before = [np.array(w) for w in model.get_weights()]
    x = np.random.default_rng(1).uniform(-1, 1, (6, 12, 12, 3)).astype(np.float32)
    expected = model(x, training=False).numpy()

    folded = fold_batchnorm(model)
    assert len(_folded(folded)) == 4  # Conv2D, DepthwiseConv2D, SeparableConv2D, and the one in the Sequential
    assert sum(isinstance(layer, L.BatchNormalization) for layer in _all_layers(folded)) == 3
    np.testing.assert_allclose(folded(x, training=False).numpy(), expected, rtol=1e-5, atol=1e-6)
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights()))  # the model is untouched
    assert not {id(v) for v in folded.weights} & {id(v) for v in model.weights}  # a copy: no shared variable
    np.testing.assert_array_equal(model(x, training=False).numpy(), expected)


def test_a_convolution_whose_output_the_model_returns_keeps_its_batchnorm():
    inputs = keras.Input((8, 8, 3))
    features = L.Conv2D(4, 3)(inputs)
    model = with_batchnorm_statistics(keras.Model(inputs, [features, L.BatchNormalization()(features)]))
    assert fold_batchnorm(model) is model


def test_a_model_with_nothing_to_fold_or_not_a_graph_is_returned_as_it_is():
    inputs = keras.Input((8, 8, 3))
    plain = keras.Model(inputs, L.Dense(2)(L.GlobalAveragePooling2D()(L.Conv2D(4, 3)(inputs))))
    assert fold_batchnorm(plain) is plain

    class Subclassed(keras.Model):
        def __init__(self):
            super().__init__()
            self.conv, self.norm = L.Conv2D(4, 3), L.BatchNormalization()

        def call(self, x, training=False):
            return self.norm(self.conv(x), training=training)

    subclassed = Subclassed()
    subclassed(np.zeros((1, 8, 8, 3), np.float32))
    assert fold_batchnorm(subclassed) is subclassed


@needs_resnet20
def test_the_shared_resnet20_folds_all_19_batchnorms_with_the_same_predictions(resnet20, cifar10_test):
    images = cifar10_test[0][:256].astype(np.float32) / 255.0
    folded = fold_batchnorm(resnet20)
    assert len(_folded(folded)) == 19
    expected = resnet20(images, training=False).numpy()
    got = folded(images, training=False).numpy()
    np.testing.assert_allclose(got, expected, atol=1e-4)
    np.testing.assert_array_equal(got.argmax(-1), expected.argmax(-1))
