"""Numba settings in one place.

Every kernel in :mod:`nlmeans._kernels` is compiled with these options, so a change here changes them all.
"""

from __future__ import annotations

import os

import llvmlite.binding as _llvm

# Contraction (FMA), no-signed-zeros, reciprocal and approximate-function flags, chosen on purpose:
# no ``nnan``/``ninf`` so NaN checks stay valid, and no ``reassoc`` so a pixel's floating-point result does not
# depend on where a vector loop starts: tiled and untiled runs stay bit-identical.
FASTMATH = set({"contract", "nsz", "arcp", "afn"})

# ``cache=True`` writes the compiled machine code next to the module, so the second run starts fast.
JIT = dict(nogil=True, cache=True, fastmath=FASTMATH, error_model="numpy")
# NLMEANS_SERIAL=1 compiles the "parallel" kernels serially: numba's bounds checking (NUMBA_BOUNDSCHECK=1)
# only raises IndexError outside parallel regions, so the bounds-checked CI step sets both.
PARALLEL_JIT = dict(JIT, parallel=os.environ.get("NLMEANS_SERIAL", "0") in ("", "0"))

# Rows per band of the parallel loop: big enough to amortise the band start, small enough that a band's
# accumulators stay in L2 over all offsets. Must be >= the search radius (the kernel enforces it).
BAND_ROWS = 32

# The kernels' inner loops read several arrays that LLVM cannot prove disjoint; its default budget of runtime
# alias checks (8) makes it give up and keep the loops scalar. A larger budget lets them vectorise.
try:  # pragma: no cover - depends on the llvmlite build
    _llvm.set_option("nlmeans", "-runtime-memory-check-threshold=64")
except Exception:  # noqa: BLE001 - an unknown option only costs speed
    pass
