"""The parts that differ between the repair methods: the compiled Keras trainer, the training batches and the
callbacks. The method registry (`ar2_tf.runs.methods`) names each method's parts; `run_repair` and the tuner
take them from there.

Each part imports its TensorFlow modules when called, so the registry that names them stays TensorFlow-free
(commands list and check methods before TensorFlow starts).
"""


def repair_trainer(classifier, config):
    """AR2's `RepairModel` (fine-tuning alone when the schedule has no refinement steps), with one SGD optimizer
    per phase."""
    import keras

    from ar2_tf.method.repair_model import RepairModel

    repair = config.repair
    model = RepairModel(classifier, k=repair.k, alpha=repair.alpha, cam_normalization=repair.cam_normalization,
                        topk_from=repair.topk_from, feature_layer=config.feature_layer,
                        dense_layer=config.dense_layer, attention=repair.attention)
    sgd = keras.optimizers.SGD
    model.compile(optimizer=sgd(repair.finetune_learning_rate, momentum=repair.momentum),
                  refine_optimizer=sgd(repair.refine_learning_rate, momentum=repair.momentum))
    return model


def augmix_trainer(classifier, config):
    """AugMix fine-tuning (`ar2_tf.baselines.augmix_model`) at the fine-tuning learning rate."""
    import keras

    from ar2_tf.baselines.augmix import AugMixConfig
    from ar2_tf.baselines.augmix_model import AugMixModel

    repair = config.repair
    model = AugMixModel(classifier, jsd_weight=AugMixConfig().jsd_weight, feature_layer=config.feature_layer,
                        dense_layer=config.dense_layer, attention=repair.attention)
    model.compile(optimizer=keras.optimizers.SGD(repair.finetune_learning_rate, momentum=repair.momentum))
    return model


def bn_adapt_trainer(classifier, config):
    """BatchNorm adaptation (`ar2_tf.baselines.bn_adapt`): no optimizer step; compiled with one only because
    Keras needs it."""
    import keras

    from ar2_tf.baselines.bn_adapt import BNAdaptModel

    model = BNAdaptModel(classifier, feature_layer=config.feature_layer, dense_layer=config.dense_layer)
    model.compile(optimizer=keras.optimizers.SGD(config.repair.finetune_learning_rate))
    return model


def corrupted_batches(split, config, *, batches_per_epoch, total_batches, **common):
    """`((clean, corrupted), labels)` batches: precomputed shards (`corruption_mode` "static") or corrupted as
    they are read."""
    if config.corruption_mode == "static":
        from ar2_tf.data.shards import static_pipeline

        return static_pipeline(config.precomputed_dir, batches_per_epoch=batches_per_epoch, **common)
    from ar2_tf.data.pipelines import repair_pipeline

    return repair_pipeline(split, corruption=config.corruption, severity=config.severity, params=config.params,
                           backend=config.corruption_backend, total_batches=total_batches, **common)


def augmix_batches(split, config, *, batches_per_epoch, total_batches, **common):
    """`((clean, augmix_1, augmix_2), labels)` batches: AugMix never sees the run's corruption."""
    from ar2_tf.baselines.augmix import augmix_pipeline

    return augmix_pipeline(split, total_batches=total_batches, **common)


def callbacks(schedule, logdir, cam_sample, preprocessing, cam_panels):
    """(schedule callback, all callbacks): the schedule's driver, its per-phase scalars and, for a method with a
    reference model (`cam_panels`), the attention panels."""
    from ar2_tf.method.callbacks import CAMImages, PhaseScalars
    from ar2_tf.method.schedule import ScheduleCallback

    schedule_callback = ScheduleCallback(schedule)
    logged = [schedule_callback, PhaseScalars(logdir, schedule_callback)]
    return schedule_callback, logged + ([CAMImages(logdir, *cam_sample, preprocessing)] if cam_panels else [])
