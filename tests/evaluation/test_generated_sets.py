"""Generated corrupted test sets: seeded, streamed or cached (keyed by everything their pixels depend on), and
the same errors either way."""

import os

import numpy as np
import pytest
import tensorflow as tf

from ar2_tf.corruptions import corrupt
from ar2_tf.data.stateless_seeds import EVAL_BATCH_SIZE
from ar2_tf.errors import UserError
from ar2_tf.evaluation import corrupted_sets
from tests.evaluation.corrupted_files import write_cifar_c


def _collect(dataset):
    images, labels = zip(*dataset.as_numpy_iterator())
    return np.concatenate(images), np.concatenate(labels)


def _clean_split(count=10, seed=0):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (count, 32, 32, 3), dtype=np.uint8)
    labels = rng.integers(0, 4, count).astype(np.int64)
    return tf.data.Dataset.from_tensor_slices((images, labels)), images, labels


def test_generated_set_is_seeded_cached_and_reused(tmp_path, monkeypatch):
    split, images, labels = _clean_split()
    source = corrupted_sets.GeneratedSource(split, seed=3, cache_dir=str(tmp_path), verbose=0)
    got, got_labels = source.arrays("gaussian_noise", 2)
    expected = corrupt(images, "gaussian_noise", 2, tf.constant([3 + 2000, 0], tf.int64)).numpy()
    np.testing.assert_array_equal(got, expected)
    np.testing.assert_array_equal(got_labels, labels)
    assert os.path.exists(os.path.join(source.path("gaussian_noise", 2), "images.npy"))

    def fail(*args):
        raise AssertionError("regenerated a cached set")

    monkeypatch.setattr(corrupted_sets.GeneratedSource, "_generate", fail)
    again = corrupted_sets.GeneratedSource(split, seed=3, cache_dir=str(tmp_path), verbose=0)
    batched, _ = _collect(again.batches("gaussian_noise", 2, batch_size=4))
    np.testing.assert_array_equal(batched, expected)


def test_cache_key_changes_with_everything_the_pixels_depend_on(tmp_path):
    split, _, _ = _clean_split()
    base = corrupted_sets.GeneratedSource(split, cache_dir=str(tmp_path), verbose=0)
    keys = {base.cache_key("fog", 1)}
    variants = [corrupted_sets.GeneratedSource(split, seed=1, cache_dir=str(tmp_path)),
                corrupted_sets.GeneratedSource(split, params="imagenet", cache_dir=str(tmp_path)),
                corrupted_sets.GeneratedSource(split, backend="reference", cache_dir=str(tmp_path)),
                corrupted_sets.GeneratedSource(_clean_split(seed=1)[0], cache_dir=str(tmp_path))]
    keys |= {v.cache_key("fog", 1) for v in variants} | {base.cache_key("fog", 2), base.cache_key("snow", 1)}
    assert len(keys) == 7
    same = corrupted_sets.GeneratedSource(split, cache_dir=str(tmp_path))
    assert base.cache_key("fog", 1) == same.cache_key("fog", 1)


def test_the_cache_key_follows_the_seed_formulas(tmp_path, monkeypatch):
    """A changed formula in ar2_tf.data.stateless_seeds (a stride, how batch i is seeded) changes the pixels of every
    generated set: the key must change with it, or stale cached sets would be read back."""
    import shutil

    from ar2_tf.data import stateless_seeds

    edited = tmp_path / "stateless_seeds.py"
    shutil.copy(stateless_seeds.__file__, edited)
    edited.write_text(edited.read_text().replace("_EVAL_SEVERITY_STRIDE = 1000", "_EVAL_SEVERITY_STRIDE = 100"))
    today = stateless_seeds.formula_fingerprint()
    monkeypatch.setattr(stateless_seeds, "__file__", str(edited))
    assert stateless_seeds.formula_fingerprint.__wrapped__() != today  # computed from the module's source
    monkeypatch.undo()
    source = corrupted_sets.GeneratedSource(_clean_split()[0], cache_dir=str(tmp_path), verbose=0)
    key = source.cache_key("fog", 1)
    monkeypatch.setattr(stateless_seeds, "formula_fingerprint", lambda: "another formula")
    assert source.cache_key("fog", 1) != key
    assert corrupted_sets.GeneratedSource(_clean_split()[0], cache_dir=str(tmp_path)).description["seeds"] == \
        "another formula"  # an evaluation's results are reused under the same description only


def _fail_second_batch(monkeypatch):
    """Makes the corruption op fail inside the pipeline at generation batch 1, after batch 0 was written."""
    from ar2_tf import corruptions

    corrupt_op = corruptions.corrupt

    def failing(images, name, severity, seed, **kwargs):
        tf.debugging.assert_less(seed[1], tf.constant(1, tf.int64), message="corruption op failed")
        return corrupt_op(images, name, severity, seed, **kwargs)

    monkeypatch.setattr(corruptions, "corrupt", failing)


def _full_disk(monkeypatch):
    import errno

    def save(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(np, "save", save)


@pytest.mark.parametrize("failure, raised, message", [
    ("op fails", tf.errors.InvalidArgumentError, "corruption op failed"),
    ("disk full", UserError, "could not cache the brightness s1 set in"),
    ("split shrinks", UserError, "the clean test split gave 266 images while the brightness s1 set was cached, not "
                                 "the 267 it holds"),
    ("interrupted", KeyboardInterrupt, None),
])
def test_a_failed_generation_leaves_no_temporary_folder(tmp_path, monkeypatch, failure, raised, message):
    """A set is written into <key>.<pid>.tmp and renamed into place; the temporary folder of one that fails (7.5 GB
    at ImageNet size) goes whatever stops it, and what the user can fix is one line."""
    count = EVAL_BATCH_SIZE + 10  # two generation batches: the second fails after the first was written
    source = corrupted_sets.GeneratedSource(_clean_split(count)[0], cache_dir=str(tmp_path), verbose=0)
    if failure == "op fails":
        _fail_second_batch(monkeypatch)
    elif failure == "disk full":
        _full_disk(monkeypatch)
    elif failure == "split shrinks":
        monkeypatch.setattr(source, "size", lambda: count + 1)
    else:
        monkeypatch.setattr(np, "save", lambda *args, **kwargs: (_ for _ in ()).throw(KeyboardInterrupt()))
    with pytest.raises(raised, match=message) as error:
        source.arrays("brightness", 1)
    assert raised is not UserError or "\n" not in str(error.value)
    assert os.listdir(tmp_path) == []  # neither a temporary folder nor a set under the key


def test_a_full_disk_while_caching_is_one_line_from_the_evaluate_command(tmp_path, monkeypatch, capsys):
    from ar2_tf import evaluate
    from ar2_tf.cli import run_main
    from tests.helpers import tiny_classifier

    model = str(tmp_path / "model.keras")
    tiny_classifier(num_classes=6, input_shape=(32, 32, 3)).save(model)
    _full_disk(monkeypatch)
    cache = tmp_path / "cache"
    assert run_main(evaluate.main, ["--model", model, "--dataset", "demo", "--test-size", "20", "--corruptions",
                                    "fog,snow", "--severities", "1", "--cache-dir", str(cache), "--verbose",
                                    "0"]) == 2
    error = capsys.readouterr().err
    assert "could not cache the fog s1 set in" in error and "could not cache the snow s1 set in" in error
    assert len(error.strip().splitlines()) == 1 and "Traceback" not in error
    assert not cache.exists() or os.listdir(cache) == []


def test_generation_without_cache_writes_nothing(tmp_path):
    split, _, _ = _clean_split(count=4)
    source = corrupted_sets.GeneratedSource(split, cache_dir=None, verbose=0)
    images, _ = source.arrays("brightness", 1)
    assert images.shape == (4, 32, 32, 3) and source.path("brightness", 1) is None


def test_generated_sets_equal_the_run_reports_corrupted_pipeline():
    """A run's before/after report and `python -m ar2_tf.evaluate` must corrupt alike: over more than one
    evaluation batch, so that the batch size (part of every batch's noise seed) matters."""
    from ar2_tf.data.pipelines import corrupted_pipeline
    from ar2_tf.evaluation.error_rates import corruption_errors
    from tests.helpers import tiny_classifier

    split, _, labels = _clean_split(count=EVAL_BATCH_SIZE + 44)
    generated, _ = corrupted_sets.GeneratedSource(split, seed=5, cache_dir=None, verbose=0).arrays(
        "gaussian_noise", 4)
    report, _ = _collect(corrupted_pipeline(split, corruption="gaussian_noise", severity=4, preprocessing="none",
                                            seed=5))
    np.testing.assert_array_equal(generated.astype(np.float32), report)
    model = tiny_classifier(input_shape=(32, 32, 3))
    predicted = np.argmax(model.predict(generated / 255.0, verbose=0), axis=1)
    errors = corruption_errors(model, split, corruption="gaussian_noise", severities=(4,), preprocessing="unit",
                               seed=5)
    assert errors["corrupted"]["4"] == pytest.approx(100.0 * np.mean(predicted != labels))


# --- Streaming (the default) against the opt-in cache -----------------------------------------------------------

def _demo_split(count):
    from ar2_tf.data.sources import load_dataset

    return load_dataset("demo", None, 1, count).test


def test_streamed_and_cached_sets_give_the_same_error_counts_bit_for_bit(tmp_path):
    """Over more than one generation batch and an inference batch size that is not the generation's, so the
    seed of every batch (stateless_seeds.evaluation_noise_seed) and the re-batching both matter."""
    from ar2_tf.evaluation.multi_model import ErrorCounter, count_errors
    from tests.helpers import trained_tiny_classifier

    split = _demo_split(EVAL_BATCH_SIZE + 60)
    counter = ErrorCounter(model := trained_tiny_classifier(0), "unit")
    streamed = corrupted_sets.GeneratedSource(split, seed=2, cache_dir=None, verbose=0)
    cached = corrupted_sets.GeneratedSource(split, seed=2, cache_dir=str(tmp_path), verbose=0)
    for corruption, severity in (("gaussian_noise", 5), ("contrast", 3)):
        counts = [count_errors(source.batches(corruption, severity, batch_size=100), {"m": counter})[0]["m"]
                  for source in (streamed, cached)]
        assert counts[0] == counts[1] and counts[0][1] == EVAL_BATCH_SIZE + 60
        clean = count_errors(split.batch(100), {"m": counter})[0]["m"]
        assert counts[0] != clean  # the counts are of corrupted images: the model's errors move with them
        pixels = [_collect(source.batches(corruption, severity, batch_size=100))[0] for source in (streamed, cached)]
        np.testing.assert_array_equal(pixels[0], pixels[1])
    assert model is not None
    assert len(os.listdir(tmp_path)) == 2  # only the cached source wrote anything


def test_streaming_is_the_default_and_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    source = corrupted_sets.open_corrupted_source(None, clean_split=_demo_split(20), dataset="demo", params="cifar",
                                                  verbose=0)
    monkeypatch.setattr(corrupted_sets.GeneratedSource, "_generate", lambda *a: pytest.fail("wrote a set"))
    source.prepare(["fog"], [1, 2])
    images, labels = _collect(source.batches("fog", 2, batch_size=8))
    assert images.shape == (20, 32, 32, 3) and images.dtype == np.uint8 and len(labels) == 20
    assert source.cache_dir is None and os.listdir(tmp_path) == []


def test_cache_over_its_budget_is_refused_up_front_with_the_size_and_the_fix(tmp_path):
    source = corrupted_sets.GeneratedSource(_demo_split(100), cache_dir=str(tmp_path / "cache"),
                                            cache_budget_gb=0.001, verbose=0)
    set_bytes = 100 * (32 * 32 * 3 + 8)
    assert source.set_bytes() == set_bytes
    source.check_budget(["fog"], [1, 2, 3])  # 0.9 MB: within 1 MB
    with pytest.raises(UserError) as error:
        source.prepare(["fog", "snow"], [1, 2, 3, 4, 5])
    message = str(error.value)
    assert "\n" not in message and "10 corrupted set(s) of 100 images would take 3.1 MB" in message
    assert "over the cache budget of 0.001 GB" in message
    assert "leave out `cache_dir` to stream them" in message and "`cache_budget_gb` 1" in message
    assert not os.path.exists(tmp_path / "cache")  # refused before anything was written


def test_a_pass_releases_its_memory_maps(tmp_path):
    """What kept ~30 MB per pass resident: a tf.data generator closing over a memory map (tf.data keeps the
    generator's function registered), or a tensor made from a view of the map. The readers open their files
    inside the generator and yield copies."""
    import gc

    def mapped(path):
        with open("/proc/self/maps") as maps:
            return any(os.path.realpath(path) in line for line in maps)

    source = corrupted_sets.GeneratedSource(_demo_split(30), cache_dir=str(tmp_path / "cache"), verbose=0)
    source.prepare(["brightness"], [1])
    write_cifar_c(tmp_path / "cifar_c", per_severity=6)
    cifar_c = corrupted_sets.NumpyCSource(str(tmp_path / "cifar_c"))
    for path, open_set in ((os.path.join(source.path("brightness", 1), "images.npy"),
                            lambda: source.batches("brightness", 1, 8)),
                           (str(tmp_path / "cifar_c" / "fog.npy"), lambda: cifar_c.batches("fog", 2, 4))):
        for _ in range(2):
            batches = open_set()
            during = [mapped(path) for _ in batches]
            assert during[0]  # read through a map while the pass runs
            del batches
        gc.collect()
        assert not mapped(path), path
