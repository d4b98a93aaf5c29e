"""The numba kernels of nlmeans, one file per algorithm family, and the weight constants they all take.

Files
-----
``pixelwise.py``  the fast 2-D pixelwise NL-means (symmetric offset pairs, explicit SIMD vectors) and the
                  vector machinery it is written with (a numba vector type, load/store intrinsics, operators,
                  the vectorised float32 exponential).
``offsets.py``    NL-means by a full loop over the search offsets: patchwise aggregation, Gaussian-weighted
                  patch distance, and the 3-D kernel (volumes and video); the scalar fast exponential.
``nlbayes.py``    NL-Bayes (Lebrun, Buades & Morel 2013): group selection, Gaussian model, Cholesky solve.

The public wrappers that pad, call a kernel and return (``nlmeans.nlm.nlmeans_chw``,
``nlmeans_offsets_chw``, ``nlmeans.volume.nlmeans_3d_chw``, ``nlmeans.nlbayes.nlbayes_chw``) live outside
this package; Perona–Malik, a baseline of ``nlmeans eval``, lives in :mod:`nlmeans.eval.perona_malik`.

Conventions
-----------
- Arrays are channel-first ``(C, H, W)`` (``(C, Z, H, W)`` in 3-D), C-contiguous, of one float dtype, and
  already padded by numpy's ``reflect`` mode, so that every index in the inner loops is non-negative and in
  bounds: loops carry no branches and vectorise over contiguous ``x``. Each kernel's docstring says its pad.
- No validation inside a kernel (the callers validate); plain arrays and scalars in, arrays out.
- float64 is the exact path (libm's ``exp``); float32 uses a vectorised polynomial ``exp`` with relative error
  < 3e-6. The ``fastmath`` flags are the set in :mod:`nlmeans._config` (no ``reassoc``), so the arithmetic
  order written is the order executed and results do not depend on the number of threads.
- Parallel loops run over row bands (slices in 3-D); each band writes only its own buffers, which are added
  in a fixed order at the end.
- Weights are ``exp(-max(d² - 2σ², 0) / h²)`` with ``d²`` the mean squared patch difference; every wrapper
  gets its constants from :func:`weight_constants`, clamped so that extreme but valid σ and h never make
  ``inf · 0`` or ``inf - inf`` in a kernel.

One cache unit per file
-----------------------
The kernels are compiled with ``cache=True``. numba's on-disk cache is keyed on the source file of the jitted
function, not on the files of the jitted functions it calls (numba issue #1833): after an edit to a jitted
helper imported from another file, the caller's stale machine code would still be loaded, a silent wrong
answer. So each kernel file is self-contained: it imports nothing from its siblings (only numpy, numba,
llvmlite and :mod:`nlmeans._config`), and whatever compiled code it needs (``@njit`` helpers, ``@intrinsic``
and ``@overload`` definitions, constants read by compiled code) sits in the same file. This was chosen over
a custom cache key because the key would have to hook numba's private cache-locator classes. The price is a
few shared numbers (the fast exponential's polynomial) written in two files; ``tests/test_kernel_layout.py``
forbids sibling imports and checks that the copies agree. (Edits to :mod:`nlmeans._config`'s flags are not
tracked either: clear the cache, ``__pycache__/*.nbi``/``*.nbc``, after changing them.)
"""

from __future__ import annotations

import numpy as np

#: upper bound of ``a``, ``bb`` and ``a * bb`` in :func:`weight_constants`: far above any value a real σ and h
#: give (those are exact), far below float32's maximum, so ``S * a`` of any patch sum stays finite
WEIGHT_CAP = 1e30


def weight_constants(n_terms, sigma, h, dtype):
    """The weight constants ``(a, bb)`` of every NL-means kernel, clamped, in ``dtype``.

    With ``S`` a sum of ``n_terms`` squared differences (the patch pixels times the guide's channels, or the
    sum of the patch weights squared times the channels), the weight is
    ``exp(-t)``, ``t = max(S - bb, 0) · a = max(d² - 2σ², 0) / h²`` for the mean ``d² = S / n_terms``:
    ``a = 1 / (n_terms h²)``, ``bb = 2 σ² n_terms``. Kernels of the form ``t = max(S a - b, 0)`` take
    ``b = a · bb`` (finite by the clamps).

    Parameters
    ----------
    n_terms : float
        Number of squared differences in ``S`` (a weighted count for weighted patch distances).
    sigma, h : float
        Noise standard deviation and filtering parameter, on the image's float scale; ``h > 0``.
    dtype : numpy float type
        The kernel's dtype (``np.float32`` or ``np.float64``); ``float`` gives the float64 values before any
        rounding to the kernel's dtype.

    Returns
    -------
    a, bb : dtype
        Computed in float64 as ``(1/h)² / n_terms`` and ``2 σ² n_terms``, then clamped: ``a, bb <= 1e30`` and
        ``a · bb <= 1e30``. Extreme but valid σ and h (1e-300 ... 1e300) thus never produce ``inf · 0`` or
        ``inf - inf`` (NaN) in a kernel, float32 included: a tiny h gives weight 1 to the patches with
        ``d² <= 2σ²`` and 0 to the others. Inside the bounds the constants are exact.
    """
    inv_h = 1.0 / np.float64(h)
    with np.errstate(over="ignore", under="ignore"):
        a = min(float(inv_h * inv_h / n_terms), WEIGHT_CAP)
        bb = min(float(2.0 * np.float64(sigma) ** 2 * n_terms), WEIGHT_CAP)
    if a * bb > WEIGHT_CAP:
        bb = WEIGHT_CAP / a
    return dtype(a), dtype(bb)
