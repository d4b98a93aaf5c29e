"""The one place for input rules: validation and dtype conversion shared by every public function.

Every error names the parameter, the value it got and what is allowed.
"""

from __future__ import annotations

import numbers

import numpy as np

#: dtypes accepted by the public API. The rule, in one place (:func:`to_float` and :func:`from_float`):
#:
#: - unsigned and signed integers are mapped from their dtype's full range to [0, 1],
#:   (x − min_dtype) / (max_dtype − min_dtype), so σ and h are fractions of that range (for int16 CT data in
#:   Hounsfield units σ = 20 HU is 20 / 65535); results are rounded, clipped and returned in the input's dtype.
#:   The dtype's range rather than the image's own: the same σ means the same thing for every image of a
#:   series, and a round trip needs no side information.
#: - 32-bit integers are computed in float64 (float32 cannot hold every 32-bit integer), the others in float32.
#: - float16 is computed in float32 and returned as float16; float32 and float64 are taken as they are.
#: - Python lists and tuples go through ``np.asarray``; integer or bool lists become float64 values as they
#:   are (a list has no dtype to define a range), so σ is on the values' own scale.
#: - bool arrays, 64-bit integers and complex numbers are refused with a hint (a binary mask is not a noisy
#:   image; 64-bit integers do not fit a float64 exactly).
SUPPORTED_DTYPES = (np.uint8, np.uint16, np.uint32, np.int8, np.int16, np.int32,
                    np.float16, np.float32, np.float64)
_SUPPORTED_NAMES = "uint8, uint16, uint32, int8, int16, int32, float16, float32, float64"
_HINTS = {
    "b": "; a bool mask is not a noisy image: pass image.astype(np.float32) (0/1) and threshold the result",
    "i": "; 64-bit integers do not fit float64 exactly: convert with image.astype(np.float64) (values as they "
         "are) or to int32",
    "c": "; denoise the real and imaginary parts (or the magnitude) separately",
}


def check_array(image, name="image", *, allow_nonfinite=False):
    """Return ``image`` as an ndarray of a supported dtype, or raise TypeError/ValueError.

    Lists and tuples of numbers are accepted; integer or bool ones become float64 (see SUPPORTED_DTYPES).
    """
    if isinstance(image, (str, bytes)) or image is None:
        raise TypeError(f"{name} must be a numpy array, got {type(image).__name__}")
    arr = np.asarray(image)
    if isinstance(image, (list, tuple)) and arr.dtype.kind in "biu":
        arr = arr.astype(np.float64)
    check_dtype_shape(arr.dtype, arr.shape, name)
    if not allow_nonfinite and arr.dtype.kind == "f" and not np.isfinite(arr).all():
        n_bad = int(arr.size - np.count_nonzero(np.isfinite(arr)))
        raise ValueError(f"{name} contains {n_bad} NaN or infinite value(s); all values must be finite")
    return arr


def check_dtype_shape(dtype, shape, name="image"):
    """Refuse an unsupported dtype (TypeError) or an empty shape (ValueError); no data are read, so this
    serves array-likes (memmaps, zarr, dask) as well."""
    dtype = np.dtype(dtype)
    if dtype.type not in SUPPORTED_DTYPES:
        hint = _HINTS.get("i" if dtype.kind in "iu" else dtype.kind, "")
        raise TypeError(f"{name} has dtype {dtype}; allowed dtypes are {_SUPPORTED_NAMES}{hint}")
    if 0 in tuple(shape):
        raise ValueError(f"{name} is empty (shape {tuple(shape)}); it needs at least one pixel")


def check_channel_axis(arr, channel_axis, name="image", *, spatial_ndim=2):
    """Validate ``channel_axis`` for an array with ``spatial_ndim`` spatial axes.

    Returns the channel axis as a non-negative int, or None for a single-channel image.
    """
    if channel_axis is None:
        if arr.ndim != spatial_ndim:
            hint = (
                " (for a color or multichannel image pass channel_axis, e.g. channel_axis=-1)"
                if arr.ndim == spatial_ndim + 1
                else ""
            )
            raise ValueError(
                f"{name} has {arr.ndim} dimensions (shape {arr.shape}); without channel_axis it must have "
                f"exactly {spatial_ndim}{hint}"
            )
        return None
    axis = check_int(channel_axis, "channel_axis")
    if arr.ndim != spatial_ndim + 1:
        raise ValueError(
            f"{name} has {arr.ndim} dimensions (shape {arr.shape}); with channel_axis it must have "
            f"{spatial_ndim + 1} ({spatial_ndim} spatial axes and one channel axis)"
        )
    if not -arr.ndim <= axis < arr.ndim:
        raise ValueError(
            f"channel_axis={channel_axis} is out of range for an array with {arr.ndim} dimensions; "
            f"allowed: {-arr.ndim} to {arr.ndim - 1}"
        )
    return axis % arr.ndim


def check_int(value, name):
    """``value`` as a Python int (bools refused)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    return int(value)


def check_odd_size(value, name, *, at_most=None, limit_name="the image"):
    """An odd, positive side length, not larger than ``at_most``."""
    size = check_int(value, name)
    if size < 1 or size % 2 == 0:
        raise ValueError(f"{name} must be an odd positive integer (1, 3, 5, ...), got {value!r}")
    if at_most is not None and size > at_most:
        raise ValueError(f"{name}={size} is larger than {limit_name} (at most {at_most} allowed here)")
    return size


def check_real(value, name, *, minimum=None, strict=False):
    """A finite real number, optionally ``>= minimum`` (``> minimum`` when ``strict``)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {value!r}")
    v = float(value)
    if not np.isfinite(v):
        raise ValueError(f"{name} must be finite, got {value!r}")
    if minimum is not None and (v <= minimum if strict else v < minimum):
        op = ">" if strict else ">="
        raise ValueError(f"{name} must be {op} {minimum}, got {value!r}")
    return v


def check_magnitude(arr, name, n_terms, dtype):
    """Refuse values so large that sums of ``n_terms`` squared differences would overflow ``dtype``.

    ``arr`` is the caller's array before conversion (integer images are scaled to [0, 1] and always fit).
    """
    if arr.dtype.kind != "f":
        return
    limit = float(np.sqrt(np.finfo(dtype).max / (64.0 * n_terms)))
    peak = float(np.abs(arr).max())
    if peak > limit:
        hint = "; pass float64 or rescale it" if np.dtype(dtype) == np.float32 else "; rescale it"
        raise ValueError(
            f"{name} has values up to {peak:.3g}, but {np.dtype(dtype).name} patch distances support "
            f"magnitudes up to {limit:.3g} (larger squared differences would overflow){hint}"
        )


def work_dtype(dtype):
    """The float dtype a kernel computes in: float64 for float64 and 32-bit integers (float32 would round
    them), float32 for everything else (float16 included)."""
    dtype = np.dtype(dtype)
    return np.float64 if dtype == np.float64 or (dtype.kind in "ui" and dtype.itemsize >= 4) else np.float32


def integer_range(dtype):
    """(lowest value, full span) of an integer dtype, e.g. (0, 255) for uint8, (-32768, 65535) for int16;
    (0, 1) for floats."""
    dtype = np.dtype(dtype)
    if dtype.kind not in "ui":
        return 0.0, 1.0
    info = np.iinfo(dtype)
    return float(info.min), float(info.max) - float(info.min)


def to_float(arr, dtype=None):
    """Integer images mapped from their dtype's range to [0, 1]; float images unchanged (float16 widened).
    Result dtype: ``dtype`` or the work dtype."""
    dtype = work_dtype(arr.dtype) if dtype is None else dtype
    if arr.dtype.kind in "ui":
        low, span = integer_range(arr.dtype)
        # one pass per step, in place (a 512² uint8 image's conversion was 7 % of a pixelwise call)
        if low:
            x = np.subtract(arr, dtype(low), dtype=dtype)
            return np.divide(x, dtype(span), out=x)
        return np.divide(arr, dtype(span), dtype=dtype)
    with np.errstate(over="ignore"):  # out-of-range values become inf; check_magnitude reports them
        return arr.astype(dtype, copy=False)


def to_chw(arr, axis, dtype):
    """Float, channel-first, C-contiguous copy of ``arr`` (a gray image gets one channel)."""
    x = to_float(arr, dtype)
    x = x[None] if axis is None else np.moveaxis(x, axis, 0)
    return np.ascontiguousarray(x)


def from_float(arr, like_dtype):
    """Back to the input's dtype: integers rounded and clipped to their range, floats cast (float16 with
    values beyond its range clipped to its largest finite value rather than turned into inf)."""
    like_dtype = np.dtype(like_dtype)
    if like_dtype.kind in "ui":
        low, span = integer_range(like_dtype)
        wide = np.multiply(arr, span, dtype=work_dtype(like_dtype))  # 32-bit ints: float64
        if low:
            wide += low
        np.rint(wide, out=wide)
        return np.clip(wide, low, low + span, out=wide).astype(like_dtype)
    if like_dtype == np.float16:
        top = float(np.finfo(np.float16).max)
        return np.clip(arr, -top, top).astype(np.float16)
    return arr.astype(like_dtype, copy=False)


def sigma_to_255(value, data_range=1.0):
    """σ or h on the float image's scale -> the 0–255 scale of the literature (and of the command line)."""
    return 255.0 * value / data_range


def sigma_from_255(value_255, data_range=1.0):
    """σ or h on the 0–255 scale -> the float image's scale; None stays None (an option left out)."""
    return None if value_255 is None else value_255 * data_range / 255.0


def is_sigma_array(sigma):
    """Whether ``sigma`` is meant as a per-channel sequence or a σ map (a list or tuple, or anything with
    dimensions: an ndarray, a memmap, a zarr array), not one number; its checks then say what is wrong with it
    (a ragged list has no ``np.ndim``)."""
    if isinstance(sigma, (list, tuple)):
        return True
    shape = getattr(sigma, "shape", None)
    return len(shape) > 0 if shape is not None else (sigma is not None and np.ndim(sigma) > 0)


def check_integer_scale(dtype, **values):
    """Refuse σ or h above 1 for an integer image: such images are scaled to [0, 1] (the dtype's full range
    is 1.0), so ``sigma=20`` (the 0–255 habit of OpenCV) would be 20 times the whole range. A sequence or an
    ndarray (σ per channel, a σ map) is judged by its largest value; other array-likes (maps read strip by
    strip) are checked where they are summarised."""
    if np.dtype(dtype).kind not in "ui":
        return
    for name, value in values.items():
        if isinstance(value, (list, tuple, np.ndarray)):  # per channel or a map: judged by the largest
            try:
                value = float(np.max(np.asarray(value, dtype=np.float64)))
            except (TypeError, ValueError):  # not numbers, or empty: the σ checks that follow say what is wrong
                continue
        if isinstance(value, numbers.Real) and not isinstance(value, bool) and value > 1:
            raise ValueError(
                f"{name}={value:g} on a {np.dtype(dtype).name} image: {name} is on the float image's scale, where "
                f"the dtype's full range is 1.0; did you mean {name}={value:g}/255 (≈ {value / 255:.4g})?"
            )


def default_data_range(data_range, name="data_range"):
    """``data_range`` on the float scale of the API: None means 1.0 (integers are scaled to [0, 1])."""
    if data_range is None:
        return 1.0
    return check_real(data_range, name, minimum=0, strict=True)


# the noise models of nlmeans.denoise(noise=...) and nlmeans.add_noise(noise=...)

#: the noise models of :func:`nlmeans.denoise` and :func:`nlmeans.add_noise`
NOISE_MODELS = ("gaussian", "poisson", "poisson-gaussian", "rician")
POISSON_MODELS = ("poisson", "poisson-gaussian")


def check_noise_model(noise):
    """``noise`` as one of :data:`NOISE_MODELS`, or a ValueError naming the allowed models."""
    if not isinstance(noise, str) or noise not in NOISE_MODELS:
        raise ValueError(f"noise={noise!r} is not a noise model; allowed: {', '.join(map(repr, NOISE_MODELS))}")
    return noise


def model_values(arr, noise):
    """The image as float64 in the units the model's parameters use.

    The Poisson models count in the image's own units: integer images are NOT scaled to [0, 1] (a uint16
    value 100 is 100 counts at gain 1), so that ``gain=1`` means "the values are photon counts". The
    Gaussian and Rician models follow the rule of the rest of the API (integers scaled to [0, 1]): they
    are scale families, σ simply scales with the image.
    """
    return arr.astype(np.float64) if noise in POISSON_MODELS else to_float(arr, np.float64)


def check_model_parameters(noise, sigma, gain):
    """``(sigma, gain)`` checked against the model: a clear error for a parameter the model has not."""
    check_noise_model(noise)
    if gain is not None:
        if noise not in POISSON_MODELS:
            raise ValueError(f"gain is a parameter of noise='poisson' and 'poisson-gaussian', not {noise!r}")
        gain = check_real(gain, "gain", minimum=0, strict=True)
    if sigma is not None:
        if noise == "poisson":
            raise ValueError("noise='poisson' has no sigma (use noise='poisson-gaussian' for read noise)")
        if noise != "gaussian":
            sigma = check_real(sigma, "sigma", minimum=0)
    return sigma, gain
