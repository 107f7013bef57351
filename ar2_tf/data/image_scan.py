"""Which image files decode: every file an image-folder run will use is decoded once before it starts.

A file with an image extension can still be unusable: a truncated download, an
empty file, an HTML error page saved as x.jpg, a file the user may not read.
Inside tf.data such a file stops training mid-run (`jpeg::Uncompress failed`)
without naming it. `undecodable` decodes each file with `decode`, the very call
the input pipeline makes, so a file that passes here decodes there too: a header
sniff lets truncated JPEGs through, and PIL accepts PNGs that TensorFlow rejects
(a missing IEND chunk). Files are decoded in a thread pool (TensorFlow ops
release the GIL): on 2 busy cores, 1,000 JPEGs of 32 px take about 0.3 s, of
500x375 px 1.1 s (2.5 s on one thread). Nothing is cached: a run scans anew.
`check_split` turns what was found into one warning per split, or a `UserError`
when the user asked for strictness.
"""

import re
import warnings
from concurrent.futures import ThreadPoolExecutor

import tensorflow as tf

from ar2_tf.errors import UserError
from ar2_tf.quiet import filtered_stderr

# The decoders report each bad file on stderr, as glog lines of TensorFlow's codecs (`E... jpeg_mem.cc:331]
# Premature end of JPEG data`) or plain lines of the libraries (`Improper call to JPEG library in state 201`);
# during the scan those failures are expected and `check_split` reports them. Other glog lines are kept.
_GLOG = re.compile(r"^[EFW]\d{4} ")
_CODEC_SOURCE = re.compile(r"\b(jpeg|png|gif|bmp|webp|jxl)\w*\.cc:\d+\]")
EXAMPLES = 3  # paths named in a warning or error


def _is_decoder_message(line) -> bool:
    return not _GLOG.match(line) or bool(_CODEC_SOURCE.search(line))


def decode(contents):
    """uint8 [H, W, 3] of an encoded JPEG/PNG/GIF/BMP: gray is repeated, alpha dropped, palettes expanded,
    a GIF gives its first frame."""
    return tf.io.decode_image(contents, channels=3, expand_animations=False)


def _decodes(path) -> bool:
    try:
        decode(tf.io.read_file(path))
    except tf.errors.OpError:  # unreadable, empty, truncated, corrupt or not an image at all
        return False
    return True


def undecodable(paths) -> list:
    """The paths (in order) that cannot be read and decoded as images by the pipeline's decoder."""
    with filtered_stderr(_is_decoder_message), ThreadPoolExecutor() as pool:
        results = list(pool.map(_decodes, paths))
    return [path for path, ok in zip(paths, results) if not ok]


def check_split(split_dir, bad, other, used, strict=False):
    """Warns once about the split's skipped files, or raises `UserError` under `strict`.

    Args:
        split_dir: the split's folder (for the messages).
        bad: image-extension files that do not decode.
        other: files without an image extension.
        used: how many image files remain after `bad` are dropped.
        strict: refuse (`strict_images`) instead of skipping.
    """
    skipped = list(bad) + list(other)
    if not skipped:
        return
    named = ", ".join(repr(str(path)) for path in skipped[:EXAMPLES])
    if not used and bad:
        raise UserError(f"none of the {len(bad)} image file(s) used from {split_dir} decodes (e.g. {named}); they "
                        "are corrupt, truncated, empty or unreadable: replace them with readable images.")
    if strict:
        raise UserError(f"{split_dir} holds {len(skipped)} file(s) that are not decodable images (e.g. {named}); "
                        "remove or replace them, or drop `strict_images` to skip them with a warning.")
    kinds = ([f"{len(bad)} that do not decode: corrupt, truncated, empty or unreadable"] if bad else []) + \
        ([f"{len(other)} without an image extension"] if other else [])
    warnings.warn(f"skipped {len(skipped)} non-image file(s) in {split_dir} ({'; '.join(kinds)}), e.g. {named}; "
                  "remove them to silence this (`strict_images` refuses such folders).",
                  stacklevel=2)
