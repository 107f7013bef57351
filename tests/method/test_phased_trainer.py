"""The phase switch's contract with Keras (`ar2_tf.method.phased_trainer`): one compiled function per phase,
selected between steps, and `steps_per_execution` only where phases change between Keras calls."""

import keras
import numpy as np
import pytest

from ar2_tf.method.phased_trainer import FINETUNE, REFINE
from ar2_tf.method.schedule import Schedule, ScheduleCallback, check_steps_per_execution
from tests.helpers import repair_batches, tiny_repair_model


def compiled_model(steps_per_execution):
    model = tiny_repair_model()
    model.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9), steps_per_execution=steps_per_execution)
    return model


def test_phase_functions_are_built_once_each_while_their_phase_is_selected():
    model = tiny_repair_model()
    seen = []
    functions = model.phase_functions("loop", lambda: seen.append(model.phase) or model.phase)
    assert functions == {REFINE: REFINE, FINETUNE: FINETUNE} and seen == [REFINE, FINETUNE]
    assert model.phase_functions("loop", lambda: seen.append("again")) is functions and len(seen) == 2
    assert model.phase == FINETUNE  # the selection is restored
    with pytest.raises(ValueError, match="has no phase 'warmup'"):
        model.set_phase("warmup")


def test_fit_follows_train_function_replaced_between_steps():
    # Keras reads `train_function` anew for every step: switching after step 1 makes step 2 a refinement step.
    model = compiled_model(1)
    schedule = Schedule(iterations=1, refine_steps=1, finetune_steps=1, unit="batch")
    callback = ScheduleCallback(schedule)
    model.fit(repair_batches(count=2).repeat(), callbacks=[callback], verbose=0, **schedule.fit_arguments(2))
    assert callback.phases_run == [(0, REFINE), (1, FINETUNE)]
    assert (model.refine_optimizer.iterations.numpy(), model.optimizer.iterations.numpy()) == (1, 1)


def test_steps_per_execution_works_when_phases_change_between_calls():
    model = compiled_model(2)
    head = [v.numpy().copy() for v in model.head_variables]
    schedule = Schedule(iterations=1, refine_steps=2, finetune_steps=0, unit="batch")
    callback = ScheduleCallback(schedule)
    model.fit(repair_batches(count=2).repeat(), callbacks=[callback], verbose=0, **schedule.fit_arguments(2))
    assert callback.phases_run == [(0, REFINE), (1, REFINE)]
    assert model.refine_optimizer.iterations.numpy() == 2 and model.optimizer.iterations.numpy() == 0
    assert all(np.array_equal(a, v.numpy()) for a, v in zip(head, model.head_variables))  # refinement only

    model = compiled_model(2)
    schedule = Schedule(iterations=1, refine_steps=2, finetune_steps=2, unit="batch")
    callback = ScheduleCallback(schedule)
    model.fit(repair_batches(count=4).repeat(), callbacks=[callback], verbose=0, **schedule.fit_arguments(4))
    assert callback.phases_run == [(0, REFINE), (1, REFINE), (2, FINETUNE), (3, FINETUNE)]
    assert (model.refine_optimizer.iterations.numpy(), model.optimizer.iterations.numpy()) == (2, 2)


def test_steps_per_execution_that_would_straddle_a_phase_is_refused_before_training():
    model = compiled_model(2)
    schedule = Schedule(iterations=2, refine_steps=1, finetune_steps=1, unit="batch")
    with pytest.raises(ValueError, match=r"steps_per_execution=2 .* phase after N=1, M=1 steps.*steps_per_execution=1"):
        model.fit(repair_batches(count=2).repeat(), callbacks=[ScheduleCallback(schedule)], verbose=0,
                  **schedule.fit_arguments(2))
    assert model.refine_optimizer.iterations.numpy() == 0 and model.optimizer.iterations.numpy() == 0
    epochs = Schedule(iterations=1, refine_steps=1, finetune_steps=1, unit="epoch")
    assert check_steps_per_execution(epochs, 2, steps_per_epoch=4) == 2
    with pytest.raises(ValueError, match="batches per epoch=3"):
        check_steps_per_execution(epochs, 2, steps_per_epoch=3)
