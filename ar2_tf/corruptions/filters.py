"""Severity lookup, padding and linear filters shared by the native corruptions.

Linear filters along one axis with a boundary rule are small dense matrices
built once in NumPy (`filter_matrix`) and applied as batched matmuls
(`separable`): exact for any boundary mode, one kernel per image when the
severity varies per image, and fast on CPUs and GPUs alike.
"""

import numpy as np
import tensorflow as tf

# ---------------------------------------------------------------- compilation

def compiled(fn):
    """fn as an XLA-compiled tf.function (no AutoGraph: the ops are plain TensorFlow). Use it on
    module-level functions, so each input signature is traced and compiled once per process.

    Worth it on CPUs where a chain of cheap ops would each make a pass over the batch (XLA fuses
    them into one), for gathers (XLA's are about 5x faster than TF's CPU kernel) and for FFT
    convolutions (~25% faster). Not for random draws (XLA's CPU generators are ~30x slower) nor
    for transcendental functions (XLA's CPU log, cos and sin are about 2x slower).
    """
    return tf.function(fn, jit_compile=True, autograph=False)


# ---------------------------------------------------------------- severity

def static_severity(severity):
    """The severity as a Python int if it is one value known at trace time, else None."""
    value = tf.get_static_value(severity)
    if value is None:
        return None
    values = np.unique(np.asarray(value))
    return int(values[0]) if values.size == 1 else None


def pick(values, severity, ndim: int = 4):
    """The entry of `values` (5 numbers) for each image, shaped to broadcast over [B, ...] (ndim axes)."""
    static = static_severity(severity)
    if static is not None:
        return tf.constant(values[static - 1], tf.float32)
    picked = tf.gather(tf.constant(values, tf.float32), severity - 1)
    return tf.reshape(picked, [-1] + [1] * (ndim - 1)) if severity.shape.rank == 1 else picked


def pick_array(arrays, severity):
    """Per-severity NumPy arrays (same shape) -> one tensor, or [B, ...] when severities differ per image."""
    static = static_severity(severity)
    if static is not None:
        return tf.constant(arrays[static - 1], tf.float32)
    return tf.gather(tf.constant(np.stack(arrays), tf.float32), severity - 1)


def batch_severity(severity, batch):
    """The severity as an int32 vector [B]."""
    return tf.broadcast_to(severity, [batch])


def by_severity(fn, x, severity):
    """fn(images, s) applied to the images of each severity s with s a Python int, stitched back in
    batch order: per-image severities at the cost of one severity. Only for corruptions without
    random draws (a draw's shape would depend on how many images have each severity)."""
    sev = batch_severity(severity, tf.shape(x)[0]) - 1
    parts = tf.dynamic_partition(x, sev, 5)
    positions = tf.dynamic_partition(tf.range(tf.shape(x)[0]), sev, 5)
    return tf.dynamic_stitch(positions, [fn(part, s + 1) for s, part in enumerate(parts)])


# ---------------------------------------------------------------- kernels (NumPy)

def gaussian_taps(sigma: float, truncate: float = 4.0) -> np.ndarray:
    """scipy.ndimage / skimage Gaussian taps: radius int(truncate * sigma + 0.5), normalised."""
    radius = int(truncate * float(sigma) + 0.5)
    if sigma <= 0 or radius == 0:
        return np.ones(1)
    x = np.arange(-radius, radius + 1)
    taps = np.exp(-0.5 * (x / float(sigma)) ** 2)
    return taps / taps.sum()


def boundary_index(index: np.ndarray, n: int, mode: str) -> np.ndarray:
    """Maps out-of-range indices into [0, n) under a border rule.

    'nearest' (edge), 'reflect' (scipy: half-sample symmetric, d c b a | a b c d),
    'reflect101' (OpenCV default: d c b | a b c d), 'wrap'.
    """
    index = np.asarray(index)
    if mode == "nearest":
        return np.clip(index, 0, n - 1)
    if mode == "wrap":
        return np.mod(index, n)
    if n == 1:
        return np.zeros_like(index)
    if mode == "reflect":
        period = 2 * n
        index = np.mod(index, period)
        return np.where(index >= n, period - 1 - index, index)
    if mode == "reflect101":
        period = 2 * n - 2
        index = np.mod(index, period)
        return np.where(index >= n, period - index, index)
    raise ValueError(f"unknown boundary mode {mode!r}")


def filter_matrix(n: int, taps: np.ndarray, mode: str) -> np.ndarray:
    """[n, n] matrix of the centred 1-D correlation with `taps` under boundary `mode`."""
    radius = (len(taps) - 1) // 2
    matrix = np.zeros((n, n))
    rows = np.arange(n)
    for k, tap in enumerate(taps):
        np.add.at(matrix, (rows, boundary_index(rows + k - radius, n, mode)), tap)
    return matrix


# ---------------------------------------------------------------- applying filters

def separable(x, rows, cols):
    """x [B,H,W,C]; rows [H',H] or [B,H',H]; cols [W',W] or [B,W',W] -> rows @ x @ cols^T per channel."""
    batch, (height, width, channels) = tf.shape(x)[0], x.shape[1:]
    # Matmuls stay 3-D with equal batch sizes (or a 2-D matrix): TF 2.21's oneDNN batch matmul
    # corrupts memory when a 2-D matrix is broadcast against a 4-D batch.
    xt = tf.reshape(tf.transpose(x, [0, 3, 1, 2]) if channels > 1 else x, [-1, height, width])

    def per_channel(matrix):
        return tf.repeat(matrix, channels, axis=0) if matrix.shape.rank == 3 else matrix

    y = tf.linalg.matmul(per_channel(rows), xt)                       # [B*C, H', W]
    y = tf.linalg.matmul(y, per_channel(cols), transpose_b=True)      # [B*C, H', W']
    y = tf.reshape(y, [batch, channels, y.shape[1], y.shape[2]])
    return tf.transpose(y, [0, 2, 3, 1]) if channels > 1 else tf.reshape(y, [batch, y.shape[2], y.shape[3], 1])


def gaussian_blur(x, sigmas, severity, mode: str = "nearest", truncate: float = 4.0):
    """skimage.filters.gaussian over H and W of x [B,H,W,C] with one sigma per severity."""
    height, width = x.shape[1], x.shape[2]
    static = static_severity(severity)
    if static is not None and gaussian_taps(sigmas[static - 1], truncate).size == 1:
        return x
    if static is not None and gaussian_taps(sigmas[static - 1], truncate).size <= _DIRECT_MAX_TAPS:
        taps = gaussian_taps(sigmas[static - 1], truncate)
        return conv1d(conv1d(x, taps, 1, mode), taps, 2, mode)
    rows = pick_array([filter_matrix(height, gaussian_taps(s, truncate), mode) for s in sigmas], severity)
    cols = rows if width == height else pick_array(
        [filter_matrix(width, gaussian_taps(s, truncate), mode) for s in sigmas], severity)
    return separable(x, rows, cols)


_DIRECT_MAX_TAPS = 17  # up to this many taps a 1-D filter runs as a convolution, beyond as a matmul


def conv1d(x, taps: np.ndarray, axis: int, mode: str):
    """Centred correlation of x [B,H,W,C] with odd-length `taps` along axis 1 or 2, border `mode`:
    a depthwise convolution of the padded batch (about twice as fast as the matrix product for
    up to 17 taps on two cores; the two agree to float round-off)."""
    r, channels = len(taps) // 2, x.shape[-1]
    padded = pad_axis(x, axis, r, r, mode)
    shape = [len(taps), 1] if axis == 1 else [1, len(taps)]
    kernel = np.tile(np.reshape(taps, shape)[:, :, None, None], (1, 1, channels, 1))
    return tf.nn.depthwise_conv2d(padded, tf.constant(kernel, tf.float32), [1, 1, 1, 1], "VALID")


def pad(x, top: int, bottom: int, left: int, right: int, mode: str):
    """Pads H and W of x [B,H,W,C]; mode 'reflect101', 'reflect' (symmetric), 'nearest' or 'constant'."""
    if mode == "constant":
        return tf.pad(x, [[0, 0], [top, bottom], [left, right], [0, 0]])
    height, width = x.shape[1], x.shape[2]
    if mode in ("reflect101", "reflect") and max(top, bottom) < height and max(left, right) < width:
        tf_mode = "REFLECT" if mode == "reflect101" else "SYMMETRIC"  # both axes in one MirrorPad
        return tf.pad(x, [[0, 0], [top, bottom], [left, right], [0, 0]], mode=tf_mode)
    return pad_axis(pad_axis(x, 1, top, bottom, mode), 2, left, right, mode)


def pad_axis(x, axis: int, before: int, after: int, mode: str):
    """Pads one axis of x with `before` and `after` values under a border rule (see boundary_index).

    Borders narrower than the axis are slices: MirrorPad for the reflections, tiled edge values
    for 'nearest'. Only wider ones (tiny images) gather, which on CPUs costs about twice as much
    along the width (one short copy per pixel).
    """
    n = x.shape[axis]
    if before == after == 0:
        return x
    if mode in ("reflect101", "reflect") and max(before, after) < n:
        paddings = [[0, 0]] * x.shape.rank
        paddings[axis] = [before, after]
        return tf.pad(x, paddings, mode="REFLECT" if mode == "reflect101" else "SYMMETRIC")
    if mode == "nearest":
        def edge(index, count):
            multiples = [1] * x.shape.rank
            multiples[axis] = count
            return tf.tile(tf.gather(x, [index], axis=axis), multiples)

        parts = ([edge(0, before)] if before else []) + [x] + ([edge(n - 1, after)] if after else [])
        return tf.concat(parts, axis)
    return tf.gather(x, boundary_index(np.arange(-before, n + after), n, mode), axis=axis)


def conv2d(x, kernels, severity, mode: str):
    """2-D correlation of x [B,H,W,C] with one odd-sized kernel per severity (list of 5 NumPy arrays).

    Kernels up to 9x9 run as a depthwise convolution. Larger ones run as a product of FFTs, as
    OpenCV's filter2D does for large kernels (compiled with XLA: ~25% faster): on two CPU cores
    a 21x21 kernel costs a tenth of the direct convolution, and the results agree to about 1e-3
    grey levels.
    """
    static = static_severity(severity)
    trimmed = [_trim(k) for k in kernels]
    size = max(trimmed[static - 1].shape) if static is not None else max(max(k.shape) for k in trimmed)
    if size > _DIRECT_MAX:
        return _fft_conv2d(x, trimmed, severity, mode)
    channels = x.shape[-1]
    if static is not None:
        kernel = trimmed[static - 1]
        r0, r1 = kernel.shape[0] // 2, kernel.shape[1] // 2
        filt = tf.constant(np.tile(kernel[:, :, None, None], (1, 1, channels, 1)), tf.float32)
        return tf.nn.depthwise_conv2d(pad(x, r0, r0, r1, r1, mode), filt, [1, 1, 1, 1], "VALID")
    stack = np.stack([_embed(k, size) for k in trimmed])
    batch = tf.shape(x)[0]
    per_image = tf.gather(tf.constant(stack, tf.float32), batch_severity(severity, batch) - 1)  # [B,k,k]
    r = size // 2
    # One depthwise conv for the batch: images become channels, kernels become per-channel filters.
    xp = pad(x, r, r, r, r, mode)
    hp, wp = xp.shape[1], xp.shape[2]
    stacked = tf.reshape(tf.transpose(xp, [1, 2, 0, 3]), [1, hp, wp, -1])            # [1,Hp,Wp,B*C]
    filt = tf.repeat(tf.transpose(per_image, [1, 2, 0]), channels, axis=2)[..., None]  # [k,k,B*C,1]
    y = tf.nn.depthwise_conv2d(stacked, filt, [1, 1, 1, 1], "VALID")
    y = tf.reshape(y, [hp - 2 * r, wp - 2 * r, batch, channels])
    return tf.transpose(y, [2, 0, 1, 3])


_DIRECT_MAX = 9  # the largest kernel side that conv2d applies directly


def fft_size(n: int) -> int:
    """The smallest length >= n of the form 2^a 3^b 5^c with b <= 2 and c <= 1: TensorFlow's CPU FFT
    runs these fast (measured: 240, 256, 288 and 320 take about area-proportional time; 250,
    270 and 300 take 1.5 to 3 times longer)."""
    while True:
        m = n
        for p, most in ((3, 2), (5, 1)):
            for _ in range(most):
                if m % p == 0:
                    m //= p
        if m & (m - 1) == 0:
            return n
        n += 1


def _fft_conv2d(x, kernels, severity, mode: str):
    """conv2d through rfft2d: x padded by the largest kernel's radius under `mode`, a circular
    convolution with the flipped kernel on a grid large enough that nothing wraps around, and
    the valid part cut out. One kernel spectrum per severity, picked per image when they vary."""
    height, width = x.shape[1], x.shape[2]
    static = static_severity(severity)
    used = [kernels[static - 1]] if static is not None else kernels
    r = max(max(k.shape) for k in used) // 2
    n_h, n_w = fft_size(height + 2 * r), fft_size(width + 2 * r)
    spectra = []
    for k in used:
        grid = np.zeros((n_h, n_w))
        t, l = r - k.shape[0] // 2, r - k.shape[1] // 2
        grid[t:t + k.shape[0], l:l + k.shape[1]] = k[::-1, ::-1]  # convolution = correlation, flipped
        spectra.append(np.fft.rfft2(grid).astype(np.complex64))
    if static is not None:
        spectrum = tf.constant(spectra[0])
    else:
        spectrum = tf.gather(tf.constant(np.stack(spectra)), batch_severity(severity, tf.shape(x)[0]) - 1)
        spectrum = spectrum[:, None]                                             # [B,1,n_h,n_w/2+1]
    return spectral_filter(x, spectrum, (r, r, r, r), mode)


def spectral_filter(x, spectrum, pads, mode: str):
    """The circular convolution of x [B,H,W,C], padded by pads = (top, bottom, left, right) under
    `mode`, with a kernel given by its rfft2d `spectrum` on the fft_size grid of the padded size;
    returns the [B,H,W,C] window from (top + bottom, left + right), where nothing wraps around
    for a kernel placed as in _fft_conv2d or geometry.motion_blur.

    Colour batches run compiled with XLA: 20-30% faster than TF's FFT kernels and the transposes
    and padding around them. Single-channel layers (snow's) do not: there XLA was ~10% slower.
    """
    return (_spectral_filter_xla if x.shape[-1] > 1 else _spectral_filter)(x, spectrum, pads, mode)


def _spectral_filter(x, spectrum, pads, mode: str):
    top, bottom, left, right = pads
    height, width = x.shape[1], x.shape[2]
    n_h, n_w = fft_size(height + top + bottom), fft_size(width + left + right)
    xp = tf.transpose(pad(x, top, bottom, left, right, mode), [0, 3, 1, 2])    # [B,C,H',W']
    y = tf.signal.irfft2d(tf.signal.rfft2d(xp, [n_h, n_w]) * spectrum, [n_h, n_w])
    y = y[:, :, top + bottom:top + bottom + height, left + right:left + right + width]
    return tf.transpose(y, [0, 2, 3, 1])


_spectral_filter_xla = compiled(_spectral_filter)


_NEGLIGIBLE = 1e-12  # a tap this much smaller than the largest one: far below float32's resolution of the sum


def _trim(kernel: np.ndarray) -> np.ndarray:
    """Drops border rows/columns whose taps are all negligible (at most _NEGLIGIBLE times the largest),
    symmetrically: kernels stay odd-sized and centred.

    Defocus blur's severity-1 kernel (ImageNet: a radius-3 disk blurred with sigma 0.1) spans 9x9, but
    its outer ring holds taps of 1e-22 and less: without it, a 7x7 kernel, about 1.4x faster and the
    same output to 1e-21 grey levels.
    """
    negligible = np.abs(kernel) <= _NEGLIGIBLE * np.abs(kernel).max()
    while kernel.shape[0] > 1 and negligible[0].all() and negligible[-1].all():
        kernel, negligible = kernel[1:-1], negligible[1:-1]
    while kernel.shape[1] > 1 and negligible[:, 0].all() and negligible[:, -1].all():
        kernel, negligible = kernel[:, 1:-1], negligible[:, 1:-1]
    return kernel


def _embed(kernel: np.ndarray, size: int) -> np.ndarray:
    """A trimmed kernel centred in a size x size array of zeros."""
    out = np.zeros((size, size))
    t, l = (size - kernel.shape[0]) // 2, (size - kernel.shape[1]) // 2
    out[t:t + kernel.shape[0], l:l + kernel.shape[1]] = kernel
    return out
