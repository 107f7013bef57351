"""The T x (N refinement, M fine-tuning) schedule, in both step units."""

import pytest

from ar2_tf.method.repair_model import FINETUNE, REFINE
from ar2_tf.method.schedule import Schedule, ScheduleCallback
from tests.helpers import repair_batches, tiny_repair_model


def test_phase_order_within_each_iteration():
    schedule = Schedule(iterations=2, refine_steps=2, finetune_steps=1)
    assert [schedule.phase_at(p) for p in range(schedule.total_steps)] == [REFINE, REFINE, FINETUNE] * 2


@pytest.mark.parametrize("unit", ["epoch", "batch"])
@pytest.mark.parametrize("iterations, refine_steps, finetune_steps", [(2, 1, 1), (1, 2, 1), (2, 0, 1)])
def test_fit_runs_exactly_t_times_n_plus_m_phases(unit, iterations, refine_steps, finetune_steps):
    schedule = Schedule(iterations, refine_steps, finetune_steps, unit)
    callback = ScheduleCallback(schedule)
    model = tiny_repair_model()
    model.fit(repair_batches(count=2).repeat(), callbacks=[callback], verbose=0, **schedule.fit_arguments(2))
    expected = [(p, schedule.phase_at(p)) for p in range(iterations * (refine_steps + finetune_steps))]
    assert callback.phases_run == expected
    assert model.refine_optimizer.iterations.numpy() == (
        iterations * refine_steps * (2 if unit == "epoch" else 1))
    assert model.optimizer.iterations.numpy() == iterations * finetune_steps * (2 if unit == "epoch" else 1)
