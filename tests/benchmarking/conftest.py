"""One tiny benchmark on the demo data, shared by the benchmark's tests and its second view's."""

import pytest

from ar2_tf import benchmark
from ar2_tf.cli import run_main
from tests.helpers import tiny_classifier

CORRUPTIONS = "gaussian_noise,contrast"


@pytest.fixture(scope="session")
def tiny_benchmark(tmp_path_factory):
    """(argv, OUT) of `python -m ar2_tf.benchmark`: vanilla, fine-tune and AR2 on two corruptions, and TENT."""
    folder = tmp_path_factory.mktemp("benchmark")
    model = str(folder / "tiny.keras")
    tiny_classifier(num_classes=6, input_shape=(32, 32, 3)).save(model)
    argv = ["--dataset", "demo", "--model", model, "--train-size", "64", "--test-size", "32", "--batch-size", "32",
            "--preset", "tiny", "--methods", "vanilla,finetune,ar2,tent", "--corruptions", CORRUPTIONS,
            "--eval-corruptions", CORRUPTIONS, "--severities", "1,5", "--cache-dir", "none", "--verbose", "0",
            "--out", str(folder / "out")]
    assert run_main(benchmark.main, argv) == 0
    return argv, str(folder / "out")
