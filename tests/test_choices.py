"""ar2_tf.choices owns the per-dataset defaults that training, evaluation, static shards and export share."""

import pytest

from ar2_tf.choices import DATASETS, LARGE_IMAGE_DATASETS, default_image_size, default_params
from ar2_tf.evaluation.suite import EvaluationSetup
from ar2_tf.runs.config import TrainConfig


@pytest.mark.parametrize("dataset", DATASETS)
def test_training_and_evaluation_take_the_same_defaults_per_dataset(dataset):
    large = dataset in LARGE_IMAGE_DATASETS
    assert default_image_size(dataset) == (224 if large else None)
    assert default_params(dataset) == ("imagenet" if large else "cifar")
    assert TrainConfig(dataset=dataset).params == default_params(dataset)
    assert EvaluationSetup(dataset=dataset).resolve([]).params == default_params(dataset)


def test_explicit_choices_win_over_the_dataset_defaults():
    assert default_image_size("imagenet", 160) == 160 and default_image_size("cifar10", 64) == 64
    assert default_params("folder", "cifar") == "cifar" and default_params("cifar10", "imagenet") == "imagenet"
    assert TrainConfig(dataset="imagenet", corruption_params="cifar").params == "cifar"
    assert EvaluationSetup(dataset="cifar10", params="imagenet").resolve([]).params == "imagenet"


def test_a_run_folder_gives_the_evaluation_its_data_and_image_size():
    """Evaluating a run folder reads its data at the size it trained at (it was refused: "the model takes 32x32
    images but the data is 224x224")."""
    from ar2_tf.evaluation.model_spec import ModelSpec

    run = ModelSpec("m.keras", "m", config={"dataset": "folder", "data_dir": "flowers", "image_size": 32})
    setup = EvaluationSetup().resolve([run])
    assert (setup.dataset, setup.data_dir, setup.image_size) == ("folder", "flowers", 32)
    assert EvaluationSetup(image_size=64).resolve([run]).image_size == 64  # the flag wins
    other = EvaluationSetup(dataset="cifar10").resolve([run])  # another dataset: none of the run's data
    assert (other.data_dir, other.image_size) == (None, None)
