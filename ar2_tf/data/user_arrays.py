"""The user's own images and labels as NumPy arrays in an `.npz` file (`dataset` "npz", `data_dir` FILE).

What a Keras user has at hand: `np.savez("data.npz", x_train=x_train, y_train=y_train, x_test=x_test,
y_test=y_test)`, the layout of `keras.datasets` files, any class count and any image size.

- Images: uint8 `[N, H, W, 3]`; gray `[N, H, W]` or `[N, H, W, 1]` becomes RGB (the corruptions are defined on
  RGB). Float arrays are taken only when every value is a whole number in 0-255 (the same pixels, cast);
  others (pixels scaled to [0, 1], normalised) are refused with the conversion to make, not guessed at.
- Labels: integers `[N]` or `[N, 1]`, one-hot `[N, C]` (as `keras.utils.to_categorical` writes them), or class
  names (strings), which become the indices of those names sorted, or of `class_names`.
- Classes: `class_names` if the file holds it (a string array, label order), else `0 .. C-1`, C the one-hot
  width or the largest label + 1.
- Splits: `x_train`/`y_train` and `x_test`/`y_test`; or `x`/`y` alone, or a train split alone, and then the
  test split is a fixed draw of 20 % of each class, the same rule and seed as a flat image tree
  (`ar2_tf.data.image_folder.held_out`), so that no run ever tests on its own training images; or
  `x_test`/`y_test` alone, test images to evaluate on (`eval_data_dir`, `python -m ar2_tf.evaluate`), with
  an empty training split. Half a pair (`x_test` without `y_test`), both layouts in one file, or an array named
  like a split that none reads (`x_val`, a misspelt `y_tst`) is refused with its name, never ignored.

The file is read with `allow_pickle=False`, whole, into memory (arrays that fit a CIFAR-size workflow; an
ImageNet-size dataset belongs in an image-folder tree or a prepared TFDS dataset).
"""

import functools
import os

import numpy as np

from ar2_tf.data.image_folder import held_out
from ar2_tf.errors import UserError


def load_user_npz(path: str) -> dict:
    """x_train/y_train/x_test/y_test/class_names arrays (read-only) from the user's `.npz` file."""
    try:
        stat = os.stat(path)
    except OSError as error:
        raise UserError(f"could not read {path!r} as an .npz array file: {error}") from None
    return dict(_load(os.path.abspath(path), stat.st_mtime_ns, stat.st_size))


@functools.lru_cache(maxsize=2)  # training then evaluation in one process; a changed file is re-read
def _load(path, mtime_ns, size) -> dict:
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
    except (OSError, ValueError) as error:
        raise UserError(f"could not read {path!r} as an .npz array file ({error}); write it with "
                        "np.savez(path, x_train=..., y_train=..., x_test=..., y_test=...).") from None
    splits = _splits(arrays, path)
    if any(arrays[y_key].dtype.kind in "US" for _, y_key in splits.values()):  # class names as labels
        names, labels = _named_labels(arrays, splits, path)
    else:
        labels = {split: _labels(arrays[y_key], f"{path}: {y_key}") for split, (_, y_key) in splits.items()}
        names = _class_names(arrays, splits, labels, path)
    result = {"class_names": names, "test_given": "test" in splits}  # else a held-out part of training
    for split, (x_key, _) in splits.items():
        if len(arrays[x_key]) != len(labels[split]):
            raise UserError(f"{path}: {len(arrays[x_key])} {split} images but {len(labels[split])} labels; give "
                            "one label per image.")
        result[f"x_{split}"], result[f"y_{split}"] = _images(arrays[x_key], f"{path}: {x_key}"), labels[split]
    if "train" not in splits:
        result.update(x_train=result["x_test"][:0], y_train=result["y_test"][:0])
    if "test" not in splits:
        testing = held_out(result["y_train"])
        images, targets = result["x_train"], result["y_train"]
        result.update(x_train=images[~testing], y_train=targets[~testing], x_test=images[testing],
                      y_test=targets[testing])
    for key in ("x_train", "y_train", "x_test", "y_test"):
        result[key].flags.writeable = False  # shared by every caller of this file
    return result


_PAIRS = (("x_train", "y_train"), ("x_test", "y_test"), ("x", "y"))  # (images, labels) of each layout's split
_READ = {key for pair in _PAIRS for key in pair} | {"class_names"}


def _splits(arrays, path) -> dict:
    """{split: (images key, labels key)} for the splits the file holds. Arrays that look like a split but that no
    split reads are refused, not ignored: a misspelt `y_test` would otherwise test on a fifth of training."""
    held, train, test = set(arrays), ("x_train", "y_train"), ("x_test", "y_test")
    unread = sorted(key for key in held - _READ if key[:2].lower() in ("x_", "y_"))
    if unread:
        raise UserError(f"{path} holds {', '.join(unread)}, which no split reads; name the arrays x_train, y_train, "
                        "x_test, y_test (or x, y), and keep any other arrays in another file.")
    for images, labels in _PAIRS:
        if (images in held) != (labels in held):
            given, missing = (images, labels) if images in held else (labels, images)
            what = f"one label per image of {images}" if missing == labels else f"the images {labels} labels"
            raise UserError(f"{path} holds {given} but no {missing}; add {missing} ({what}), or leave out {given}.")
    if "x" in held and held & {"x_train", "x_test"}:
        both = ", ".join(key for key in ("x_train", "x_test") if key in held)
        raise UserError(f"{path} holds x and y beside {both}; name the training arrays x_train and y_train (a "
                        "file holds one layout: x_train/y_train with x_test/y_test, or x/y alone).")
    if held >= set(train):
        return {"train": train, "test": test} if held >= set(test) else {"train": train}
    if held >= {"x", "y"}:
        return {"train": ("x", "y")}
    if held >= set(test):  # test images alone: to evaluate on (`eval_data_dir`, python -m ar2_tf.evaluate)
        return {"test": test}
    raise UserError(f"{path} holds {', '.join(sorted(arrays)) or 'no arrays'}; expected x_train and y_train "
                    "(and x_test, y_test), or x and y: write it with np.savez(path, x_train=..., y_train=..., "
                    "x_test=..., y_test=...).")


def check_arrays(images, labels, where: str):
    """What the file's loading checks of one split's images and labels, for arrays given in memory and named
    `where` in messages (the argument that holds them, e.g. "the `train`")."""
    images, labels = np.asarray(images), np.asarray(labels)
    _images(images, f"{where} images")
    if labels.dtype.kind not in "US":  # class names are checked against each other once in the file
        labels = _labels(labels, f"{where} labels")
    if len(images) != len(labels):
        raise UserError(f"{where} pair holds {len(images)} images but {len(labels)} labels; give one label per "
                        "image.")


def _images(images, where) -> np.ndarray:
    if images.ndim == 3 or (images.ndim == 4 and images.shape[-1] == 1):  # gray: the corruptions need RGB
        images = np.repeat(images.reshape(images.shape[:3])[..., None], 3, axis=-1)
    if images.ndim != 4 or images.shape[-1] != 3:
        raise UserError(f"{where} has shape {images.shape}; expected images [N, H, W, 3] (or gray [N, H, W]).")
    if images.dtype == np.uint8:
        return images
    if not (np.issubdtype(images.dtype, np.integer) or np.issubdtype(images.dtype, np.floating)):
        raise UserError(f"{where} holds {images.dtype}; expected uint8 pixels 0-255.")
    low, high = (images.min(), images.max()) if images.size else (0, 0)
    if low < 0 or high > 255 or not np.array_equal(images, np.round(images)):
        raise UserError(f"{where} holds {images.dtype} values from {low:g} to {high:g}, not pixels 0-255; store "
                        "the uint8 pixels, before any scaling (for pixels scaled to [0, 1]: "
                        "np.round(x * 255).astype('uint8')); the model's own scaling is `preprocessing`.")
    return images.astype(np.uint8)


def _labels(labels, where) -> np.ndarray:
    if labels.ndim == 2 and labels.shape[1] > 1:  # one-hot
        ones = labels == 1
        if not (np.all(ones | (labels == 0)) and np.all(ones.sum(axis=1) == 1)):
            raise UserError(f"{where} has shape {labels.shape} but its rows are not one-hot; store one integer "
                            "label per image, or one-hot rows.")
        return np.argmax(labels, axis=1).astype(np.int64)
    if labels.ndim == 2 and labels.shape[1] == 1:
        labels = labels[:, 0]
    if labels.ndim != 1 or not (np.issubdtype(labels.dtype, np.integer)
                                or (np.issubdtype(labels.dtype, np.floating)
                                    and np.array_equal(labels, np.round(labels)))):
        raise UserError(f"{where} has shape {labels.shape} and dtype {labels.dtype}; expected integer class labels "
                        "[N] (or one-hot rows [N, C]).")
    if labels.size and labels.min() < 0:
        raise UserError(f"{where} holds the label {labels.min():g}; labels are class indices from 0.")
    return labels.astype(np.int64)


def _class_names(arrays, splits, labels, path) -> tuple:
    widths = [arrays[y_key].shape[1] for _, y_key in splits.values()
              if arrays[y_key].ndim == 2 and arrays[y_key].shape[1] > 1]  # one-hot
    largest = max((int(y.max()) for y in labels.values() if y.size), default=-1)
    if "class_names" in arrays:
        names = tuple(str(name) for name in np.asarray(arrays["class_names"]).reshape(-1))
        if len(names) <= largest:
            raise UserError(f"{path}: the label {largest} needs {largest + 1} classes but class_names lists "
                            f"{len(names)}; list one name per class, in label order.")
        return names
    return tuple(str(i) for i in range(max(widths + [largest + 1])))


def _named_labels(arrays, splits, path) -> tuple:
    """(class names, {split: labels}) for labels that are class names: the classes are `class_names` in its
    order if the file holds it, else the names sorted (as image folders sort theirs)."""
    named = {split: np.asarray(arrays[y_key]).reshape(-1) for split, (_, y_key) in splits.items()}
    if any(y.dtype.kind not in "US" for y in named.values()):
        raise UserError(f"{path}: some labels are class names and some are not; store one kind in every split.")
    given = "class_names" in arrays
    names = (tuple(str(name) for name in np.asarray(arrays["class_names"]).reshape(-1)) if given
             else tuple(sorted({str(name) for y in named.values() for name in y})))
    index = {name: position for position, name in enumerate(names)}
    unknown = sorted({str(name) for y in named.values() for name in y} - set(index))
    if unknown:
        raise UserError(f"{path}: the label {unknown[0]!r} is not in class_names; list every class there, in "
                        "label order.")
    return names, {split: np.array([index[str(name)] for name in y], np.int64) for split, y in named.items()}
