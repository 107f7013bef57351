"""The Keras trainer, training batches and callbacks of each repair method (see `ar2_tf.runs.methods`).

`run_repair` and the tuner call the three functions here with what the run's plan resolved
(`ar2_tf.runs.plan`); which schedule and budget a method gets is decided by the registry, not here.
"""

import keras

from ar2_tf.baselines.augmix import AugMixConfig, augmix_pipeline
from ar2_tf.baselines.augmix_model import AugMixModel
from ar2_tf.baselines.bn_adapt import BNAdaptModel
from ar2_tf.data.pipelines import repair_pipeline
from ar2_tf.data.shards import static_pipeline
from ar2_tf.method.callbacks import CAMImages, PhaseScalars
from ar2_tf.method.repair_model import RepairModel
from ar2_tf.method.schedule import ScheduleCallback


def build_trainer(classifier, config):
    """The compiled Keras model whose `fit` repairs `classifier` in place."""
    repair = config.repair
    if config.method == "augmix":
        model = AugMixModel(classifier, jsd_weight=AugMixConfig().jsd_weight, feature_layer=config.feature_layer,
                            dense_layer=config.dense_layer, attention=repair.attention)
        model.compile(optimizer=keras.optimizers.SGD(repair.finetune_learning_rate, momentum=repair.momentum))
        return model
    if config.method == "bn-adapt":  # no optimizer step; compiled with one only because Keras needs it
        model = BNAdaptModel(classifier, feature_layer=config.feature_layer, dense_layer=config.dense_layer)
        model.compile(optimizer=keras.optimizers.SGD(repair.finetune_learning_rate))
        return model
    model = RepairModel(classifier, k=repair.k, alpha=repair.alpha, cam_normalization=repair.cam_normalization,
                        topk_from=repair.topk_from, feature_layer=config.feature_layer,
                        dense_layer=config.dense_layer, attention=repair.attention)
    sgd = keras.optimizers.SGD
    model.compile(optimizer=sgd(repair.finetune_learning_rate, momentum=repair.momentum),
                  refine_optimizer=sgd(repair.refine_learning_rate, momentum=repair.momentum))
    return model


def build_pipeline(split, config, preprocessing, schedule, start_batch=0):
    """The training batches of the whole `schedule` for `build_trainer`'s model, from batch `start_batch` on."""
    per_epoch = int(split.cardinality()) // config.batch_size
    arguments = schedule.fit_arguments(per_epoch)
    total_batches = arguments["epochs"] * arguments["steps_per_epoch"]
    common = dict(batch_size=config.batch_size, preprocessing=preprocessing, seed=config.seed,
                  start_batch=start_batch)
    if config.method == "augmix":
        return augmix_pipeline(split, total_batches=total_batches, **common)
    if config.corruption_mode == "static":
        return static_pipeline(config.precomputed_dir, batches_per_epoch=per_epoch, **common)
    return repair_pipeline(split, corruption=config.corruption, severity=config.severity, params=config.params,
                           backend=config.corruption_backend, total_batches=total_batches, **common)


def method_callbacks(trainer, method, schedule, logdir, cam_sample, preprocessing):
    """Callbacks that drive `method`'s (`ar2_tf.runs.methods.Method`) `schedule` and log it: (schedule callback,
    all callbacks)."""
    schedule_callback = ScheduleCallback(schedule)
    if not method.refines:  # no reference model, so no CAM panels
        return schedule_callback, [schedule_callback, PhaseScalars(logdir, schedule_callback)]
    return schedule_callback, [schedule_callback, PhaseScalars(logdir, schedule_callback),
                               CAMImages(logdir, *cam_sample, preprocessing)]
