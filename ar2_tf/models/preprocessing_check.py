"""Is a model file fed the inputs it was trained on? Checked on a sample before any work.

A model file does not say how its inputs were scaled, so a run's preprocessing is the user's
`preprocessing` or a guess (`ar2_tf.data.preprocessing.default_preprocessing`: `caffe` for
ImageNet-size data, `unit` otherwise). A wrong one does not fail: the run evaluates, repairs and
reports a model that was never accurate, hours later. So before the pretrained model is evaluated,
it classifies a sample of the validation images (a seeded random choice from the training split,
so every class can be in it; a run without validation images, a seeded sample of the training
images) with each named preprocessing; `python -m ar2_tf.evaluate` does the same for a model file
on a seeded random sample of the test images. When another is clearly more accurate
(`mismatch`), a guessed preprocessing is refused with the fix, and one the user chose gets a
warning: they may know better.
"""

import numpy as np

from ar2_tf.data.preprocessing import PREPROCESSORS, get_preprocessor
from ar2_tf.errors import UserError

SAMPLE = 128  # validation images classified per preprocessing
MIN_SAMPLE = 32  # fewer validation images: no check (too noisy to refuse a run on)
BATCH_PIXELS = 32 * 224 * 224  # image pixels per inference call: 32 images at 224 px, the whole sample at 32 px
MIN_GAIN = 25.0  # points of accuracy another preprocessing must add, and at least double the chosen one's


def accuracies(classifier, images, labels, specs) -> dict:
    """{spec: % of `images` (uint8) that `classifier` classifies right after that preprocessing}."""
    batch = max(1, BATCH_PIXELS // (images.shape[1] * images.shape[2]))
    results = {}
    for spec in specs:
        preprocess = get_preprocessor(spec)
        predictions = np.concatenate([np.asarray(classifier(preprocess(images[start:start + batch]), training=False))
                                      .argmax(-1) for start in range(0, len(images), batch)])
        results[spec] = float(100.0 * np.mean(predictions == labels))
    return results


def sample(dataset, data_dir, image_size, seed, split) -> tuple:
    """(uint8 images, labels): a seeded random `SAMPLE` of a dataset's "train" or "test" split, drawn as
    `train_size` / `test_size` draw subsets. Files of an image folder that do not decode were already
    reported by the run's own loading: here they are skipped without a second warning."""
    import warnings

    from ar2_tf.data.sources import load_dataset

    sizes = {"train": (SAMPLE, 1), "test": (1, SAMPLE)}[split]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pairs = list(getattr(load_dataset(dataset, data_dir, *sizes, image_size, seed), split).as_numpy_iterator())
    return np.stack([image for image, _ in pairs]), np.array([label for _, label in pairs])


def mismatch(accuracy: dict, chosen: str):
    """The preprocessing clearly more accurate than `chosen` (`MIN_GAIN`), or None."""
    best = max(accuracy, key=accuracy.get)
    gain = accuracy[best] - accuracy[chosen]
    return best if best != chosen and gain >= MIN_GAIN and accuracy[best] >= 2 * accuracy[chosen] else None


def check_preprocessing(classifier, images, labels, chosen: str, explicit: bool, what="validation images"):
    """Refuses (`UserError`) a guessed `chosen` preprocessing that another clearly beats on `images` (named
    `what` in the message); returns a warning line for an `explicit` one, else None. Fewer than `MIN_SAMPLE`
    images: no check."""
    images, labels = images[:SAMPLE], np.asarray(labels[:SAMPLE])
    if len(images) < MIN_SAMPLE:
        return None
    accuracy = accuracies(classifier, images, labels, dict.fromkeys([chosen, *PREPROCESSORS]))
    better = mismatch(accuracy, chosen)
    if better is None:
        return None
    finding = (f"the model classifies {accuracy[chosen]:.0f}% of {len(images)} {what} right with "
               f"preprocessing {chosen} but {accuracy[better]:.0f}% with {better}")
    if explicit:
        return f"warning: {finding}; is {chosen} the preprocessing the model was trained with?"
    raise UserError(f"{finding} ({chosen} is only the default guess for this model and dataset): pass "
                    f"`preprocessing` {better}, or `preprocessing` {chosen} to run with it anyway.")
