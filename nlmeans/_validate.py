"""The one place for input rules: validation and dtype conversion shared by every public function.

Every error names the parameter, the value it got and what is allowed.
"""

from __future__ import annotations

import numbers

import numpy as np

#: dtypes accepted by the public API
SUPPORTED_DTYPES = (np.uint8, np.uint16, np.float32, np.float64)
_SUPPORTED_NAMES = "uint8, uint16, float32, float64"


def check_array(image, name="image", *, allow_nonfinite=False):
    """Return ``image`` as an ndarray of a supported dtype, or raise TypeError/ValueError."""
    if isinstance(image, (str, bytes)) or image is None:
        raise TypeError(f"{name} must be a numpy array, got {type(image).__name__}")
    arr = np.asarray(image)
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
        raise TypeError(f"{name} has dtype {dtype}; allowed dtypes are {_SUPPORTED_NAMES}")
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
    """The float dtype a kernel computes in: float64 for float64 input, float32 for everything else."""
    return np.float64 if np.dtype(dtype) == np.float64 else np.float32


def integer_scale(dtype):
    """Full-range value of an integer dtype (255 for uint8), or 1.0 for floats."""
    dtype = np.dtype(dtype)
    return float(np.iinfo(dtype).max) if dtype.kind in "ui" else 1.0


def to_float(arr, dtype=None):
    """Integer images scaled to [0, 1]; float images unchanged. Result dtype: ``dtype`` or the work dtype."""
    dtype = work_dtype(arr.dtype) if dtype is None else dtype
    if arr.dtype.kind in "ui":
        return arr.astype(dtype) / dtype(integer_scale(arr.dtype))
    with np.errstate(over="ignore"):  # out-of-range values become inf; check_magnitude reports them
        return arr.astype(dtype, copy=False)


def to_chw(arr, axis, dtype):
    """Float, channel-first, C-contiguous copy of ``arr`` (a gray image gets one channel)."""
    x = to_float(arr, dtype)
    x = x[None] if axis is None else np.moveaxis(x, axis, 0)
    return np.ascontiguousarray(x)


def from_float(arr, like_dtype):
    """Back to the input's dtype: integers rounded and clipped to their range, floats cast."""
    like_dtype = np.dtype(like_dtype)
    if like_dtype.kind in "ui":
        scale = integer_scale(like_dtype)
        return np.clip(np.rint(arr * scale), 0, scale).astype(like_dtype)
    return arr.astype(like_dtype, copy=False)


def sigma_to_255(value, data_range=1.0):
    """σ or h on the float image's scale -> the 0–255 scale of the literature (and of the command line)."""
    return 255.0 * value / data_range


def sigma_from_255(value_255, data_range=1.0):
    """σ or h on the 0–255 scale -> the float image's scale; None stays None (an option left out)."""
    return None if value_255 is None else value_255 * data_range / 255.0


def check_integer_scale(dtype, **values):
    """Refuse σ or h above 1 for an integer image: such images are scaled to [0, 1] (the dtype's full range
    is 1.0), so ``sigma=20`` (the 0–255 habit of OpenCV) would be 20 times the whole range."""
    if np.dtype(dtype).kind not in "ui":
        return
    for name, value in values.items():
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
