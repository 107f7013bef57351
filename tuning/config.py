"""One search's settings (TensorFlow-free, so `python -m tuning` checks its flags before TensorFlow starts)."""

import dataclasses

from ar2_tf.runs.config import TrainConfig


@dataclasses.dataclass(frozen=True)
class SearchConfig:
    """One search. Shrunken variant for CPU tests: demo data, train_size 96, val_size 48, budget 1.

    Command: python -m tuning --dataset cifar10 --data-dir D.npz --model M.h5 --corruption gaussian_noise
    """

    train: TrainConfig  # data, model, corruption, batch size, seed; train_size excludes the validation images
    tuner: str = "random"  # random | bayesian | hyperband
    max_trials: int = 10  # trials in all, resumed ones included (hyperband: set by budget and factor)
    val_size: int = 1000  # validation images carved from the training split (seeded)
    epochs_budget: int = 2  # training steps per trial (epochs for step_unit "epoch"); hyperband's max_epochs
    max_clean_drop: float = 2.0  # D: the clean-accuracy drop (points) a trial may cost before it is penalised
    val_severities: tuple = (1, 2, 3, 4, 5)  # severities averaged in the corrupted validation accuracy
    fixed: tuple = ()  # "NAME=VALUE" items taken out of the search (see tuning.hypermodel)
    hyperband_factor: int = 3  # hyperband's reduction factor
    compare_defaults: bool = True  # also score the paper's k=3, alpha=1, N=M=1 under the same budget
