"""The TensorBoard attention panel: the paper's Figure 1 layout, readable tile size, before vs after."""

import numpy as np

from ar2_tf.method.callbacks import PANEL_TILE, cam_panels
from tests.helpers import repair_batches, tiny_repair_model


def _images(seed):
    return np.random.default_rng(seed).integers(0, 256, (3, 16, 16, 3), dtype=np.uint8)


def test_panel_rows_are_clean_corrupted_then_the_pretrained_and_repaired_attention_on_the_corrupted_image():
    model = tiny_repair_model()
    clean, corrupted = _images(0), _images(1)
    panels = cam_panels(model, clean, corrupted, "unit").numpy()
    side = PANEL_TILE  # 16-px images are upscaled 8x to the readable minimum
    assert panels.shape == (3, side, 4 * side, 3) and 0 <= panels.min() and panels.max() <= 1
    tiles = np.split(panels, 4, axis=2)
    np.testing.assert_allclose(tiles[0], np.repeat(np.repeat(clean, 8, 1), 8, 2) / 255.0, atol=1e-6)
    np.testing.assert_allclose(tiles[1], np.repeat(np.repeat(corrupted, 8, 1), 8, 2) / 255.0, atol=1e-6)
    # Heat maps are blended over the corrupted image: each overlay is within half a unit of it.
    assert np.abs(tiles[2] - 0.5 * tiles[1]).max() <= 0.5 + 1e-6
    # Untrained: θ is θ_ref, so both attention tiles agree; a refinement step moves θ's only.
    np.testing.assert_allclose(tiles[2], tiles[3], atol=1e-5)
    model.set_phase("refine")
    model.fit(repair_batches(count=2), epochs=1, verbose=0)
    after = np.split(cam_panels(model, clean, corrupted, "unit").numpy(), 4, axis=2)
    np.testing.assert_allclose(after[2], tiles[2], atol=1e-5)
    assert np.abs(after[3] - tiles[3]).max() > 1e-3
