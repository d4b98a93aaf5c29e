"""What the row bands of the kernels run on Python threads share: how many threads, and aligned work arrays.

Used by NL-Bayes (:func:`nlmeans.nlbayes._run_stages`) and the pixelwise kernels (:func:`nlmeans.nlm._bands`);
kept apart from both so that importing one does not import the other's kernels.
"""

from __future__ import annotations

import math

import numpy as np

from . import _config


def _n_threads():
    """Threads for the row bands: numba's setting of this thread (``numba.set_num_threads``), 1 with
    ``NLMEANS_SERIAL=1`` (the bounds-checked CI step runs the kernels serially)."""
    if not _config.PARALLEL_JIT["parallel"]:
        return 1
    import numba
    from numba.np.ufunc import parallel

    # get_num_threads() starts numba's thread pool, which the bands (Python threads) never use: ~25 ms CPU of
    # a cached CLI run. Until the pool exists nobody can have called set_num_threads, so the default applies.
    if not getattr(parallel, "_is_initialized", True):
        return numba.config.NUMBA_NUM_THREADS
    return numba.get_num_threads()


def _aligned(shape, dtype, zeros=True):
    """A new C-contiguous array (zeros, or not initialised) whose data starts on a 64-byte boundary, as the
    kernel's own arrays did (numba aligns to 32 bytes, numpy to 16): the pieces' vector loops then run on
    aligned rows (numpy's alignment made the colour call 2-10 % slower, varying from process to process)."""
    dtype = np.dtype(dtype)
    shape = (shape,) if isinstance(shape, int) else shape
    size = math.prod(shape) * dtype.itemsize
    raw = (np.zeros if zeros else np.empty)(size + 64, dtype=np.uint8)
    start = -raw.__array_interface__["data"][0] % 64
    return raw[start:start + size].view(dtype).reshape(shape)
