"""Repair methods compared on equal terms: what model, pipeline and schedule each one trains with.

- "ar2": `RepairModel` with the T x (N refinement, M fine-tuning) schedule.
- "finetune": the paper's ablation, fine-tuning alone on clean + corrupted
  images: the same model and schedule with N = 0, i.e. T·M fine-tuning steps.

Every method trains from the same pretrained classifier on the same training
split and is evaluated by the same code; `training.run_repair` only calls the
three functions here.
"""

import keras

from ar2_tf.callbacks import CAMImages, PhaseScalars
from ar2_tf.data import repair_pipeline
from ar2_tf.repair import RepairModel
from ar2_tf.schedule import Schedule, ScheduleCallback
from ar2_tf.shards import static_pipeline


def build_trainer(classifier, config):
    """The compiled Keras model whose `fit` repairs `classifier` in place."""
    repair = config.effective_repair
    model = RepairModel(classifier, k=repair.k, alpha=repair.alpha, cam_normalization=repair.cam_normalization,
                        topk_from=repair.topk_from, feature_layer=config.feature_layer,
                        dense_layer=config.dense_layer)
    sgd = keras.optimizers.SGD
    model.compile(optimizer=sgd(repair.finetune_learning_rate, momentum=repair.momentum),
                  refine_optimizer=sgd(repair.refine_learning_rate, momentum=repair.momentum))
    return model


def build_pipeline(split, config, preprocessing, start_batch=0, batches_per_epoch=None):
    """The endless training pipeline of batches for `build_trainer`'s model, from batch `start_batch` on.

    With `corruption_mode` "static" the batches come from precomputed shards (`ar2_tf.shards`).
    """
    if config.corruption_mode == "static":
        return static_pipeline(config.precomputed_dir, batch_size=config.batch_size, preprocessing=preprocessing,
                               seed=config.seed, start_batch=start_batch, batches_per_epoch=batches_per_epoch)
    return repair_pipeline(split, corruption=config.corruption, severity=config.severity,
                           batch_size=config.batch_size, preprocessing=preprocessing, seed=config.seed,
                           params=config.params, backend=config.corruption_backend, start_batch=start_batch,
                           batches_per_epoch=batches_per_epoch)


def schedule_of(config) -> Schedule:
    return Schedule.from_config(config.effective_repair)


def method_callbacks(trainer, config, logdir, cam_sample, preprocessing):
    """Callbacks that drive the schedule and log it: (schedule callback, all callbacks)."""
    schedule_callback = ScheduleCallback(schedule_of(config))
    return schedule_callback, [schedule_callback, PhaseScalars(logdir, schedule_callback),
                               CAMImages(logdir, *cam_sample, preprocessing)]
