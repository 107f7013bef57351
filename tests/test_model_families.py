"""Every keras.applications classifier family can be repaired and served (weights=None, 10 classes, the
smallest input each allows): one refinement and one fine-tuning batch, the head untouched by refinement,
the export's serving signatures equal Keras, and so does the BatchNorm-folded copy the evaluation and export run."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from ar2_tf.method.repair_model import RepairModel
from ar2_tf.models.batchnorm_folding import fold_batchnorm
from export.serving_module import ServingModule
from tests.helpers import with_batchnorm_statistics

A = keras.applications
FAMILIES = {  # family -> (constructor, smallest input side, attention `auto` picks)
    "ResNet50": (A.ResNet50, 32, "cam"),
    "ResNet50V2": (A.ResNet50V2, 32, "cam"),
    "DenseNet121": (A.DenseNet121, 32, "cam"),
    "EfficientNetB0": (A.EfficientNetB0, 32, "cam"),
    "EfficientNetV2B0": (A.EfficientNetV2B0, 32, "cam"),
    "MobileNet": (A.MobileNet, 32, "cam"),
    "MobileNetV2": (A.MobileNetV2, 32, "cam"),
    "MobileNetV3Small": (A.MobileNetV3Small, 32, "gradcam"),
    "InceptionV3": (A.InceptionV3, 75, "cam"),
    "Xception": (A.Xception, 71, "cam"),
    "NASNetMobile": (A.NASNetMobile, 32, "cam"),
    "ConvNeXtTiny": (A.ConvNeXtTiny, 32, "gradcam"),
    "VGG16": (A.VGG16, 32, "gradcam"),
}
# One xdist group per family (they share no fixture): each free worker takes the next family, so the long ones
# (NASNetMobile, ConvNeXtTiny, DenseNet121) spread over both workers however long each turns out to be.
PARAMS = [pytest.param(name, marks=pytest.mark.xdist_group(f"family-{name}")) for name in FAMILIES]


def _values(variables):
    return [np.array(v.numpy()) for v in variables]


@pytest.mark.slow
@pytest.mark.parametrize("family", PARAMS)
def test_family_repairs_and_exports(family, tmp_path):
    build, side, attention = FAMILIES[family]
    keras.utils.set_random_seed(0)
    classifier = build(weights=None, classes=10, input_shape=(side, side, 3))
    model = RepairModel(classifier, k=3)
    assert model.attention.kind == attention
    model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9))
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (4, side, side, 3), dtype=np.uint8)
    clean = images.astype(np.float32)  # these families preprocess inside or expect raw pixels: "none"
    corrupted = np.clip(clean + rng.normal(0, 40, clean.shape), 0, 255).astype(np.float32)
    batch = ((clean, corrupted), np.arange(4) % 10)

    # One batch of each phase through `train_step`, the function `fit` compiles (eagerly: tracing a deep
    # network costs more than its step; `fit` and the phase switch are tested on small models).
    head, backbone = _values(model.head_variables), _values(model.backbone_variables)
    model.set_phase("refine")
    assert np.isfinite(model.train_step(batch)["align_loss"])
    assert all(np.array_equal(a, b) for a, b in zip(head, _values(model.head_variables)))
    assert any(not np.array_equal(a, b) for a, b in zip(backbone, _values(model.backbone_variables)))
    model.set_phase("finetune")
    assert np.isfinite(model.train_step(batch)["ce_loss"])
    assert any(not np.array_equal(a, b) for a, b in zip(head, _values(model.head_variables)))

    # The serving graph: the same tf.functions `python -m export` saves (a saved and reloaded export is tested on
    # tiny models in tests/export and, on demand, on ResNet-50 at 224 px in tests/test_imagenet_224.py; writing 13 large
    # SavedModels here would double this test's time).
    # Unfolded here (`fold=False`): the export folds the BatchNorm layers with the function checked below, and
    # exports unfolded a model whose fold misses its 1e-5 check (tests/export/test_exporter.py).
    names = tmp_path / "class_names.txt"
    names.write_text("".join(f"c{i}\n" for i in range(10)))
    with_batchnorm_statistics(classifier)  # so that the BatchNorm fold below is no identity
    module = ServingModule(classifier, str(names), preprocessing="none", resize="resize", attention=attention,
                           fold=False)
    assert set(module.signatures()) == {"serving_default", "predict_preprocessed", "cam"}
    expected = classifier(clean, training=False).numpy()
    out = module.serving_default(tf.constant(images))
    np.testing.assert_allclose(out["probabilities"].numpy(), expected, atol=1e-5)
    maps = module.cam(tf.constant(images))["cam"].numpy()
    assert maps.shape == (4, side, side) and np.isfinite(maps).all()

    # What the evaluation runs (`ar2_tf.models.batchnorm_folding`): the same probabilities with BatchNorm folded. Raw
    # 0-255 pixels through 50 untrained layers with random statistics: float32 rounding reaches 7e-5 (ResNet50V2);
    # a wrong fold moves probabilities by tenths.
    np.testing.assert_allclose(fold_batchnorm(classifier)(clean, training=False).numpy(), expected, atol=2e-4)
