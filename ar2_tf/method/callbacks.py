"""Callbacks of a repair run: TensorBoard scalars per phase, CAM images, checkpoints.

All TensorBoard writing lives here; `RepairModel.train_step` writes nothing.
"""

import json
import os
import time

import keras
import numpy as np
import tensorflow as tf

from ar2_tf.data import stateless_seeds as seeds
from ar2_tf.data.pairs import as_pixels, check_batches, check_corruption_choice
from ar2_tf.data.pipelines import corrupt_views
from ar2_tf.data.preprocessing import get_preprocessor
from ar2_tf.errors import UserError


class PhaseScalars(keras.callbacks.Callback):
    """Writes each epoch's metrics under the tag of the phase that ran it (`refine/…`, `finetune/…`).

    With step_unit "batch" an epoch mixes both phases; its metrics go under `iteration/…`.
    """

    def __init__(self, logdir, schedule_callback):
        super().__init__()
        self.writer = tf.summary.create_file_writer(os.path.join(logdir, "train"))
        self.schedule_callback = schedule_callback

    def on_epoch_end(self, epoch, logs=None):
        unit = self.schedule_callback.schedule.unit
        group = self.schedule_callback.phases_run[-1][1] if unit == "epoch" else "iteration"
        keep = {"refine": ("align_loss",), "finetune": ("ce_loss",)}.get(group, ("align_loss", "ce_loss"))
        with self.writer.as_default(step=epoch):
            for name, value in (logs or {}).items():
                if name.endswith("accuracy") or name in keep:
                    tf.summary.scalar(f"{group}/{name}", value)
        self.writer.flush()


PANEL_TILE = 128  # smallest tile side in pixels: 32-pixel CIFAR images are upscaled 4x to be readable
PANEL_TAG = "attention"
PANEL_DESCRIPTION = ("Per row: clean image | corrupted image | the pretrained model's attention on the corrupted image "
                     "| the repaired model's attention on the corrupted image (class: the pretrained model's "
                     "prediction on the clean image).")


def _heatmap(maps, size):
    """Maps [N, h, w] -> RGB heat maps [N, H, W, 3] in [0, 1] (blue low, red high), each scaled to its range."""
    maps = tf.image.resize(maps[..., None], size, method="bilinear")[..., 0]
    low = tf.reduce_min(maps, axis=[1, 2], keepdims=True)
    high = tf.reduce_max(maps, axis=[1, 2], keepdims=True)
    scaled = (maps - low) / (high - low + 1e-6)
    return tf.stack([scaled, 1.0 - tf.abs(2.0 * scaled - 1.0), 1.0 - scaled], axis=-1)


def cam_panels(model, clean_uint8, corrupted_uint8, preprocessing, tile=PANEL_TILE):
    """The paper's Figure 1 as rows of four tiles, float [N, S, 4S, 3] in [0, 1], S = max(tile, image side):

    clean image | corrupted image | the pretrained model's (θ_ref) attention on the corrupted image |
    the repaired model's (θ) attention on the corrupted image; heat maps half-blended over the corrupted
    image. Both maps are of θ_ref's predicted class on the clean image: the attention AR2 restores.
    """
    preprocess = get_preprocessor(preprocessing)
    clean, corrupted = preprocess(clean_uint8), preprocess(corrupted_uint8)
    classes = tf.argmax(model.reference_attention.logits(model.reference_backbone(clean, training=False)), axis=-1,
                        output_type=tf.int32)[:, None]
    before = model.reference_attention.maps(model.reference_backbone(corrupted, training=False), classes)[:, 0]
    after = model.attention.maps(model.backbone(corrupted, training=False), classes)[:, 0]
    return attention_tiles(clean_uint8, corrupted_uint8, [before, after], tile)


def attention_tiles(clean_uint8, corrupted_uint8, maps, tile=PANEL_TILE):
    """Rows of tiles, float [N, S, (2 + M)S, 3] in [0, 1], S = max(tile, image side): clean image | corrupted
    image | each of the M attention maps [N, h, w] as a heat map half-blended over the corrupted image."""
    height, width = clean_uint8.shape[1:3]
    scale = max(1, -(-tile // min(height, width)))  # ceil: every tile at least `tile` pixels
    size = (height * scale, width * scale)

    def upscale(images):
        return tf.image.resize(tf.cast(images, tf.float32) / 255.0, size, method="nearest")

    corrupted_tile = upscale(corrupted_uint8)
    heat = [0.5 * corrupted_tile + 0.5 * _heatmap(tf.cast(attention, tf.float32), size) for attention in maps]
    return tf.concat([upscale(clean_uint8), corrupted_tile, *heat], axis=2)


class CAMImages(keras.callbacks.Callback):
    """Logs attention panels (`cam_panels`) of a fixed sample of test images to TensorBoard: before
    training (step -1) and after every epoch, so every phase has its picture.

    For `ar2_tf.RepairModel.fit`: the panels compare its reference (pretrained) model's attention with its
    classifier's. The images go to `logdir/cams`, tag "attention".

    Args:
        logdir: the TensorBoard folder.
        clean_uint8: uint8 images [N, H, W, 3].
        corrupted_uint8: the same images corrupted.
        preprocessing: the classifier's input preprocessing (`ar2_tf.data.preprocessing`).

    Example:
        panels = CAMImages.from_dataset("logs", val, corruption="fog", severity=3, preprocessing="tf")
    """

    def __init__(self, logdir, clean_uint8, corrupted_uint8, preprocessing):
        super().__init__()
        self.writer = tf.summary.create_file_writer(os.path.join(logdir, "cams"))
        self.clean, self.corrupted = clean_uint8, corrupted_uint8
        self.preprocessing = preprocessing

    @classmethod
    def from_dataset(cls, logdir, dataset, *, corruption, severity=3, preprocessing, count=8, seed=0,
                     params="cifar", backend="native"):
        """The panels of the first `count` images of `(images, labels)` batches, corrupted with the noise seed of
        a repair run's panels (`ar2_tf.data.stateless_seeds.sample_noise_seed`); arguments as `ar2_tf.corrupted_pairs`'."""
        check_batches(dataset)
        corruption, severity = check_corruption_choice(corruption, severity)
        images = as_pixels(tf.concat([batch for batch, _ in dataset.unbatch().batch(count).take(1)], axis=0))
        corrupted = corrupt_views(images, corruption, severity, seeds.sample_noise_seed(seed), params=params,
                                  backend=backend)
        return cls(logdir, images, corrupted, preprocessing)

    def write(self, step):
        panels = cam_panels(self.model, self.clean, self.corrupted, self.preprocessing)
        with self.writer.as_default(step=step):
            tf.summary.image(PANEL_TAG, panels, max_outputs=len(self.clean), description=PANEL_DESCRIPTION)
        self.writer.flush()

    def on_train_begin(self, logs=None):
        self.write(-1)

    def on_epoch_end(self, epoch, logs=None):
        self.write(epoch)


class NonFiniteGuard(keras.callbacks.Callback):
    """Stops training at the first batch whose metrics are NaN or Inf and remembers where.

    `failure` is then a sentence naming the phase, epoch and batch; checkpoints
    taken after it are refused, so the last good one survives.
    """

    def __init__(self):
        super().__init__()
        self.failure = None
        self._epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        values = [float(v) for v in (logs or {}).values()]
        if self.failure is None and not np.all(np.isfinite(values)):
            phase = getattr(self.model, "phase", "training")
            self.failure = f"the {phase} phase, epoch {self._epoch + 1}, batch {batch + 1}"
            self.model.stop_training = True


class PhaseCheckpoint(keras.callbacks.Callback):
    """Saves θ, the optimizers and the schedule position after every epoch (every phase with
    step_unit "epoch", every outer iteration with "batch"), keeping the last two.

    `tf.train.CheckpointManager` writes the data files first and swaps in the
    `checkpoint` index file atomically last, so a crash mid-write leaves the
    previous checkpoint the valid one. Each saved epoch is appended to
    `progress.jsonl` beside the checkpoints.
    """

    def __init__(self, directory, model, guard=None):
        super().__init__()
        self.guard = guard
        self.epoch = tf.Variable(-1, dtype=tf.int64, trainable=False)
        optimizers = {"optimizer": model.optimizer}
        if getattr(model, "refine_optimizer", None) is not None:
            optimizers["refine_optimizer"] = model.refine_optimizer
        self.checkpoint = tf.train.Checkpoint(classifier=model.classifier, epoch=self.epoch, **optimizers)
        self.manager = tf.train.CheckpointManager(self.checkpoint, directory, max_to_keep=2)
        self.progress_path = os.path.join(directory, "progress.jsonl")

    def restore(self) -> int:
        """Restores the latest checkpoint if any; returns the number of epochs it had completed."""
        if self.manager.latest_checkpoint is None:
            return 0
        self.checkpoint.restore(self.manager.latest_checkpoint).expect_partial()
        return int(self.epoch.numpy()) + 1

    def on_epoch_end(self, epoch, logs=None):
        if self.guard is not None and self.guard.failure is not None:
            return  # never overwrite a good checkpoint with a diverged state
        self.epoch.assign(epoch)
        try:
            self.manager.save(checkpoint_number=epoch)
            with open(self.progress_path, "a") as file:
                file.write(json.dumps({"epoch": epoch, "time": time.time()}) + "\n")
        except (OSError, tf.errors.OpError) as error:
            previous = self.manager.latest_checkpoint or "none yet"
            raise UserError(f"could not write the checkpoint of epoch {epoch + 1} ({error}); the previous "
                            f"checkpoint ({previous}) is intact. Free disk space and re-run the same command "
                            "to resume.") from None
