"""One repair run end to end: data, model, before/after evaluation, the AR2 schedule, outputs.

`run_repair(plan)` is what `python -m ar2_tf.train` and `ar2_tf.repair` call with the run's plan
(`ar2_tf.runs.plan`: the checked config and what it resolves to, resolved once); every step here reads
the plan. It writes the run folder `plan.out` (layout: `ar2_tf.runs.run_folder`).
"""

import contextlib
import dataclasses
import hashlib
import os
import shutil

import keras
import numpy as np
import tensorflow as tf

from ar2_tf import errors
from ar2_tf.data import stateless_seeds
from ar2_tf.data.pipelines import clean_pipeline, corrupt_views
from ar2_tf.errors import UserError
from ar2_tf.evaluation import clean_rise
from ar2_tf.evaluation.error_rates import clean_verdicts, corruption_errors
from ar2_tf.evaluation.validation import ValidationSet
from ar2_tf.method.attention import resolve_attention
from ar2_tf.method.callbacks import NonFiniteGuard, PhaseCheckpoint
from ar2_tf.method.head import check_trainable, find_head, frozen_layers_note
from ar2_tf.models import architectures, checks, loading, preprocessing_check
from ar2_tf.output_files import environment, save_model_atomic
from ar2_tf.runs import distributed_loop, distribution, precision, run_folder
from ar2_tf.runs.config import TrainConfig, from_dict, to_dict
from ar2_tf.runs.plan import RunPlan, plan_run
from ar2_tf.runs.run_folder import RunFolder
from ar2_tf.runs.selection import PhaseSelection


def pretrain(classifier, split, *, epochs, batch_size, preprocessing, seed, verbose):
    """Vanilla pre-training on clean images (for architectures built without weights)."""
    classifier.compile(optimizer=keras.optimizers.Adam(2e-3), loss="sparse_categorical_crossentropy",
                       metrics=["accuracy"])
    batches = clean_pipeline(split, batch_size=batch_size, preprocessing=preprocessing, shuffle=True, seed=seed)
    classifier.fit(batches, epochs=epochs, verbose=verbose, shuffle=False)


def prepare_classifier(plan, source, out, verbose):
    """Loads the pretrained classifier, or builds and pre-trains one (saved as pretrained.keras in `out`)."""
    config = plan.config
    saved = RunFolder(out).file(run_folder.PRETRAINED)
    if plan.model_file:
        return loading.load_model_file(config.model, unsafe_model_loading=config.unsafe_model_loading)
    if os.path.exists(saved):
        return loading.load_model_file(saved)
    if config.model not in architectures.ARCHITECTURES:
        return loading.load_model_file(config.model)  # raises the missing-file error
    shape = (*source.image_shape, 3)
    classifier = architectures.build_model(config.model, source.num_classes, shape, config.weights)
    pretrained = config.model == "resnet50" and (config.weights or "imagenet") == "imagenet"
    if not pretrained:
        if config.pretrain_epochs < 1:
            raise UserError(f"{config.model} has no pretrained weights here; pass `model` as the path of a "
                            "pretrained model file, or `pretrain_epochs` N for a short vanilla pre-training first.")
        print(f"pre-training a vanilla {config.model} for {config.pretrain_epochs} epochs on clean images")
        pretrain(classifier, source.train, epochs=config.pretrain_epochs, batch_size=config.batch_size,
                 preprocessing=plan.preprocessing, seed=config.seed, verbose=verbose)
    save_model_atomic(classifier, saved)
    return classifier


def check_repairable(classifier, plan):
    """What the model alone can tell, checked before it is evaluated or trained: its head, the attention that
    head allows, and that the method has weights to train (`ar2_tf.method.head`)."""
    config, method = plan.config, plan.method
    head = find_head(classifier, config.feature_layer, config.dense_layer)
    resolve_attention(head, config.repair.attention)
    if not method.single_pass:  # bn-adapt sets BatchNorm statistics, trainable or not
        check_trainable(classifier, head, method.refines)
        if note := frozen_layers_note(classifier, head, method.refines):
            errors.note(note)


def check_input_scale(classifier, plan, validation):
    """A model file's preprocessing checked on the validation images, or on a seeded sample of the training
    images when the run has none (`ar2_tf.models.preprocessing_check`): a guessed one clearly beaten is a
    `UserError`, an explicit one a printed warning. Built architectures are not checked."""
    config = plan.config
    if not plan.model_file:
        return
    if validation is not None:
        images, labels, what = validation.images, validation.labels, "validation images"
    elif plan.given is not None:  # data handed over as datasets: no path to sample
        from ar2_tf.data.given_datasets import training_sample

        (images, labels), what = training_sample(plan.data.source, preprocessing_check.SAMPLE,
                                                 config.seed), "training images"
    else:
        (images, labels), what = preprocessing_check.sample(config.dataset, config.data_dir, config.image_size,
                                                            config.seed, "train"), "training images"
    warning = preprocessing_check.check_preprocessing(classifier, images, labels, plan.preprocessing,
                                                      explicit=config.preprocessing is not None, what=what)
    if warning:
        errors.note(warning)


def _evaluate(classifier, test_split, plan):
    """Errors at the target corruption; for the unified model, at all 15 (severity-wise means)."""
    config, names = plan.config, plan.targets
    results = {name: corruption_errors(classifier, test_split, corruption=name, preprocessing=plan.preprocessing,
                                       params=config.params, backend=config.corruption_backend, seed=config.seed)
               for name in names}
    if len(results) == 1:
        return results[config.corruption]
    severities = next(iter(results.values()))["corrupted"]
    return {"clean": results[names[0]]["clean"],
            "corrupted": {s: float(np.mean([r["corrupted"][s] for r in results.values()])) for s in severities},
            "mean_corrupted": float(np.mean([r["mean_corrupted"] for r in results.values()])),
            "per_corruption": {name: r["mean_corrupted"] for name, r in results.items()}}


def _verdicts(classifier, split, plan):
    """Per test image, whether `classifier` gets it right: before and after are compared image by image."""
    return clean_verdicts(classifier, split, plan.preprocessing)


def _cam_sample(split, config, count=8):
    images = next(iter(split.batch(count)))[0]
    corrupted = corrupt_views(images, config.corruption, config.severity, stateless_seeds.sample_noise_seed(config.seed),
                              params=config.params, backend=config.corruption_backend)
    return images, corrupted


def check_one_batch(train_size, batch_size) -> int:
    """The number of whole batches in the training split; none is a `UserError`."""
    if train_size == 0:
        raise UserError("the training split holds no images; pass `data_dir` with training images (an .npz "
                        "file needs x_train and y_train, or x and y).")
    if train_size < batch_size:
        raise UserError(f"the training split has {train_size} images, fewer than one batch of {batch_size}; "
                        "lower `batch_size`.")
    return train_size // batch_size


def _validation_set(split, plan):
    """The validation images, clean and at the training severity of the target corruption (all 15: unified)."""
    config = plan.config
    return ValidationSet.from_split(split, corruptions=plan.targets, severities=(config.severity,),
                                    preprocessing=plan.preprocessing, params=config.params,
                                    backend=config.corruption_backend, seed=config.seed)


def _train(classifier, plan, out, verbose, strategy=None, validation=None):
    """Runs the method's schedule in one `fit`, resuming from the last checkpoint in `out`; with
    `validation`, a `PhaseSelection` keeps the best phase. Returns (phases run, the selection or None).

    Under a multi-worker strategy the schedule runs in `distributed_loop.fit` instead (same callbacks).
    """
    config, data, schedule, preprocessing = plan.config, plan.data, plan.schedule, plan.preprocessing
    trainer = plan.method.build_trainer(classifier, config)
    precision.configure_trainer(trainer, policy=config.mixed_precision, jit_compile=config.jit_compile)
    guard = NonFiniteGuard()
    checkpoint = PhaseCheckpoint(os.path.join(out, run_folder.CHECKPOINTS), trainer, guard)
    initial_epoch = checkpoint.restore()
    batches_per_epoch = check_one_batch(data.plan.train_size, config.batch_size)
    fit_arguments = schedule.fit_arguments(batches_per_epoch)
    pipeline = plan.method.pipeline(data.train, config, preprocessing, schedule,
                                    start_batch=initial_epoch * fit_arguments["steps_per_epoch"])
    schedule_callback, callbacks = plan.method.callbacks(
        schedule, os.path.join(out, run_folder.LOGS), _cam_sample(data.test, config), preprocessing)
    callbacks += [guard, checkpoint]
    selection = None
    if validation is not None:  # after the checkpoint: its state always describes a checkpointed phase
        selection = PhaseSelection(validation, trainer.classifier, os.path.join(out, run_folder.CHECKPOINTS),
                                   config.max_clean_drop, initial_epoch, os.path.join(out, run_folder.LOGS, "validation"))
        callbacks.append(selection)
    if initial_epoch:
        print(f"resuming from checkpoint after epoch {initial_epoch} of {fit_arguments['epochs']}")
    if distribution.is_multi_worker(strategy):
        distributed_loop.fit(trainer, pipeline, strategy=strategy, global_batch_size=config.batch_size,
                             initial_epoch=initial_epoch, callbacks=callbacks, verbose=verbose, **fit_arguments)
    else:
        trainer.fit(pipeline, initial_epoch=initial_epoch, callbacks=callbacks, verbose=verbose, shuffle=False,
                    **fit_arguments)
    if guard.failure is not None:
        last = checkpoint.manager.latest_checkpoint or "none: it failed before the first checkpoint"
        raise UserError(f"training diverged: NaN/Inf loss in {guard.failure}. The last good checkpoint is kept "
                        f"({last}). Lower the learning rates (`refine_learning_rate`, `finetune_learning_rate`) and "
                        "re-run with `force`.")
    steps_per_epoch = 1 if schedule.unit == "epoch" else schedule.cycle
    return initial_epoch * steps_per_epoch + len(schedule_callback.phases_run), selection  # resumes included


def run_identity(config):
    """The config plus a fingerprint of the pretrained model file: a changed file is a different run."""
    identity = to_dict(config)
    if os.path.isfile(config.model):
        digest = hashlib.sha256()
        with open(config.model, "rb") as file:
            for chunk in iter(lambda: file.read(1 << 20), b""):
                digest.update(chunk)
        identity["model_sha256"] = digest.hexdigest()
    return identity


def recorded_identity(recorded: dict) -> dict:
    """A run folder's recorded identity in today's terms: config fields added since it was written take
    their defaults, so a run made by an older version with the same settings is reused, not refused."""
    values = dict(recorded)
    digest = values.pop("model_sha256", None)
    try:
        identity = to_dict(from_dict(values))
    except (UserError, TypeError):  # fields this version does not know: compare as recorded
        return recorded
    if digest is not None:
        identity["model_sha256"] = digest
    return identity


def run_repair(plan: RunPlan, out: str = None, *, force=False, strategy="auto", deterministic=False,
               verbose=1) -> dict:
    """Repairs a model for one corruption; returns (and writes) the before/after report.

    `plan` is the run's plan (`ar2_tf.runs.plan.plan_run`), or a `TrainConfig` with the run folder `out`,
    planned here. `strategy` is a name from `ar2_tf.choices.STRATEGIES` or a `tf.distribute.Strategy`.
    In a multi-worker run only the chief writes `out` and returns the report;
    other workers return None.

    Re-running with the same `out` resumes from the last checkpoint (or reuses a
    finished run). `deterministic` enables TensorFlow's deterministic ops, so a
    resumed run ends with the same weights as an uninterrupted one.
    """
    if isinstance(plan, TrainConfig):
        plan = plan_run(plan, out)
    config = plan.config
    if isinstance(strategy, str):  # a multi-worker strategy must be created before any TF op: pass it in
        strategy = distribution.get_strategy(strategy)
    distribution.check_global_batch(config.batch_size, strategy)
    keras.utils.set_random_seed(config.seed)  # weight init, pre-training order
    if deterministic:
        tf.config.experimental.enable_op_determinism()
    if not distribution.is_chief(strategy):
        return _run_worker(plan, strategy)
    run = RunFolder(plan.out).claim(run_identity(config), force=force, upgrade=recorded_identity)
    out = run.path
    distribution.barrier(strategy)  # the run folder is ready (or reset) for the other workers
    if run.finished:
        errors.note(f"{out} already holds a finished run; reusing its report (`force` runs it again).")
        return run.read_report()
    data = plan.data
    source, test_split = data.source, data.test
    # What only the data can tell, checked before any model is loaded, pre-trained or evaluated.
    note = config.repair.class_set_note(source.num_classes)
    if note and plan.method.refines:
        errors.note(note)
    check_one_batch(data.plan.train_size, config.batch_size)
    # Keras fit (pre-training) fails under a multi-worker scope: there θ is prepared outside it.
    with contextlib.nullcontext() if distribution.is_multi_worker(strategy) else strategy.scope():
        classifier = prepare_classifier(plan, source, out, verbose)
        checks.check_compatible(classifier, source.num_classes, source.image_shape)
        check_repairable(classifier, plan)
        validation = None if data.validation is None else _validation_set(data.validation, plan)
        check_input_scale(classifier, plan, validation)
        before = run.read_before()
        if before is None:
            before = {**_evaluate(classifier, test_split, plan),
                      "clean_correct": clean_rise.encode(_verdicts(classifier, test_split, plan))}
            run.write_before(before)
    with strategy.scope():
        trained = _training_copy(classifier, config, strategy)
        phases_run, selection = _train(trained, plan, out, verbose, strategy, validation)
        kept = selection.restore_kept(trained) if selection else None
    if trained is not classifier:
        classifier.set_weights(trained.get_weights())
    after = _evaluate(classifier, test_split, plan)
    verdicts = before.pop("clean_correct", None)  # None: measured by an older version
    rise = None if verdicts is None else clean_rise.paired_rise(clean_rise.decode(verdicts),
                                                                _verdicts(classifier, test_split, plan))
    run.save_model(classifier)
    report = {"config": to_dict(config), "environment": environment(),
              "schedule": dataclasses.asdict(plan.schedule),
              "phases_run": phases_run, "class_names": list(source.class_names),
              "preprocessing": plan.preprocessing,
              "input_shape": checks.run_input_shape(classifier, source.image_shape),
              "train_size": data.plan.train_size, "val_size": data.plan.val_size,
              "validation_source": data.plan.record(), "validation": kept,
              "before": before, "after": after, "clean_rise": rise}
    run.write_report(report)
    return report


def _training_copy(classifier, config, strategy):
    """θ as trained: the classifier itself, or a copy made under the current scope when it trains in
    mixed precision or under a multi-worker strategy (its weights are copied back afterwards)."""
    if not config.mixed_precision and not distribution.is_multi_worker(strategy):
        return classifier
    head = find_head(classifier, config.feature_layer, config.dense_layer)
    return precision.with_policy(classifier, config.mixed_precision,
                                 keep_float32=precision.float32_layers(classifier, head))


def _run_worker(plan, strategy):
    """A non-chief worker of a multi-worker run: trains in step with the chief, writes only to a
    temporary folder (deleted at the end), evaluates nothing and returns None."""
    config, out = plan.config, plan.out
    work_dir = distribution.worker_dir(out, strategy)
    try:
        distribution.barrier(strategy)  # the chief has prepared (or reset) the run folder
        if RunFolder(out).finished:
            return None
        checkpoints = RunFolder(out).file(run_folder.CHECKPOINTS)
        if os.path.isdir(checkpoints):  # resume from where the chief resumes
            shutil.copytree(checkpoints, os.path.join(work_dir, run_folder.CHECKPOINTS))
        data = plan.data  # the chief's splits; it alone selects
        if plan.model_file:
            classifier = loading.load_model_file(config.model, unsafe_model_loading=config.unsafe_model_loading)
        else:  # the architecture only: the chief's weights arrive by broadcast before the first step
            classifier = architectures.build_model(config.model, data.source.num_classes, (*data.source.image_shape, 3),
                                            "none")
        with strategy.scope():
            _train(_training_copy(classifier, config, strategy), plan, work_dir, 0, strategy)
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)
    return None
