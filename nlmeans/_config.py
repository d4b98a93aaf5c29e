"""Numba settings in one place.

Every kernel in :mod:`nlmeans.kernels` (and :mod:`nlmeans.eval.perona_malik`) is compiled with these options, so a
change here changes them all.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import os
import sys

import llvmlite.binding as _llvm

# numba's default threading layer (OpenMP) lets idle workers spin between parallel regions. On a machine whose
# cores are busy with other work, spinning threads steal the time the working ones need: on 2 shared cores the
# 512x512 kernel took 2x longer wall time with spinning than without. Passive waiting costs a futex wake-up
# (microseconds) per region. Set only if the user has not chosen, and only effective if OpenMP is not loaded yet.
os.environ.setdefault("OMP_WAIT_POLICY", "passive")

# Contraction (FMA), no-signed-zeros, reciprocal and approximate-function flags, chosen on purpose:
# no ``nnan``/``ninf`` so NaN checks stay valid, and no ``reassoc`` so a pixel's floating-point result does not
# depend on where a vector loop starts: tiled and untiled runs stay bit-identical.
FASTMATH = set({"contract", "nsz", "arcp", "afn"})

# ``cache=True`` writes the compiled machine code next to the module, so the second run starts fast.
JIT = dict(nogil=True, cache=True, fastmath=FASTMATH, error_model="numpy")
# NLMEANS_SERIAL=1 compiles the "parallel" kernels serially: numba's bounds checking (NUMBA_BOUNDSCHECK=1)
# only raises IndexError outside parallel regions, so the bounds-checked CI step sets both.
PARALLEL_JIT = dict(JIT, parallel=os.environ.get("NLMEANS_SERIAL", "0") in ("", "0"))

# Rows per band of the parallel loop: big enough to amortise the band start (the running column sums restart
# at every band: 2f + 1 rows of extra work per offset), small enough to give every thread several bands. 64 was
# 4% faster than 32 on one core, both at 512 and 2048 wide (bench/README.md). Must be >= the search radius.
BAND_ROWS = 64


def band_rows(r):
    """Rows per parallel band of the pixelwise kernel for search radius ``r``: ``max(BAND_ROWS, r)``.

    Bands are aligned to image row 0; a tiled run is bit-identical to a whole run when every strip starts at a
    multiple of this number (see the module docstring of :mod:`nlmeans.kernels.pixelwise`).
    """
    return max(BAND_ROWS, r, 1)

# The kernels' inner loops read several arrays that LLVM cannot prove disjoint; its default budget of runtime
# alias checks (8) makes it give up and keep the loops scalar. A larger budget lets them vectorise.
try:  # pragma: no cover - depends on the llvmlite build
    _llvm.set_option("nlmeans", "-runtime-memory-check-threshold=64")
except Exception:  # noqa: BLE001 - an unknown option only costs speed
    pass


def _scipy_has_cython_blas():
    """Whether scipy's ``scipy.linalg.cython_blas`` extension module is installed, found without importing
    ``scipy.linalg`` (``importlib``'s path finder, given that folder only, does not import the package)."""
    spec = importlib.util.find_spec("scipy")
    folders = [os.path.join(folder, "linalg") for folder in (spec and spec.submodule_search_locations or ())]
    return bool(folders) and importlib.machinery.PathFinder.find_spec("cython_blas", folders) is not None


def _import_arraymath_without_scipy_linalg():
    """Import ``numba.np.arraymath`` with numba's BLAS check made without importing ``scipy.linalg``.

    numba's CPU target imports ``numba.np.arraymath`` at its first compilation or cache load, and that module
    asks once whether BLAS is there (``_HAVE_BLAS``, which only picks how ``np.vdot`` and friends are typed) by
    importing ``scipy.linalg.cython_blas``, i.e. all of ``scipy.linalg``: the largest single cost of a cached
    ``nlmeans denoise`` after numpy and numba themselves (docs/benchmarks.md, "Start-up, second round"), for a
    library no nlmeans kernel calls. Here the same question is answered by looking for that extension
    module's file (:func:`_scipy_has_cython_blas`), then numba's own BLAS integer-width check runs (it reads
    only ``scipy.__config__``). A real BLAS or LAPACK compilation still goes through numba's unchanged
    ``ensure_blas``/``ensure_lapack``, which import ``scipy.linalg`` then. A no-op if ``numba.np.arraymath``
    is already imported or numba is not laid out as expected (then ``scipy.linalg`` is imported as before).
    """
    if "numba.np.arraymath" in sys.modules:
        return
    try:
        from numba.np import linalg as numba_linalg

        numba_ensure_blas = numba_linalg.ensure_blas
    except (ImportError, AttributeError):  # pragma: no cover - another numba: leave it alone
        return

    def ensure_blas():
        if not _scipy_has_cython_blas():
            raise ImportError("scipy 0.16+ is required for linear algebra")  # numba's message and exception
        check_width = getattr(numba_linalg, "_check_lapack_int_width", None)
        if check_width is not None:
            check_width()

    numba_linalg.ensure_blas = ensure_blas
    try:
        import numba.np.arraymath as arraymath  # calls ensure_blas once, at its import
    finally:
        numba_linalg.ensure_blas = numba_ensure_blas
    if getattr(arraymath, "ensure_blas", None) is ensure_blas:  # its own name for it, taken at the import
        arraymath.ensure_blas = numba_ensure_blas


_import_arraymath_without_scipy_linalg()
