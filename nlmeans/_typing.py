"""The type aliases of the public API's annotations (the package ships ``py.typed``, PEP 561).

Real imports, not ``TYPE_CHECKING`` ones, so that ``typing.get_type_hints`` resolves every public signature at
run time (tests/test_typing.py); only numpy, so ``import nlmeans`` stays light. The string choices mirror the
library's constants (``nlmeans.presets.METHODS``, ...); tests/test_typing.py keeps them equal.
"""

from __future__ import annotations

from collections.abc import Sequence
from os import PathLike
from typing import Any, Literal, TypeAlias

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["Array", "ArrayLike", "ArrayStore", "Method", "NoiseModel", "PatchWeights", "Real", "Seed", "SigmaLike",
           "StrPath", "VolumeMethod"]

#: what the functions return: an ndarray (dtype documented per function)
Array: TypeAlias = NDArray[Any]
#: a real number; numpy scalars (``arr.std()``) included
Real: TypeAlias = float | np.floating[Any] | np.integer[Any]
#: σ of :func:`nlmeans.denoise`: one value, one per channel, or a per-pixel map
SigmaLike: TypeAlias = Real | Sequence[Real] | NDArray[Any]
#: a seed for numpy's random generators
Seed: TypeAlias = int | np.random.Generator | None
#: a file path
StrPath: TypeAlias = str | PathLike[str]

#: ``method`` of :func:`nlmeans.denoise` (``nlmeans.presets.METHODS``)
Method: TypeAlias = Literal["nlbayes", "pixelwise", "patchwise"]
#: ``method`` of :func:`nlmeans.denoise_volume` and :func:`nlmeans.denoise_video` (``nlmeans.volume.METHODS``)
VolumeMethod: TypeAlias = Literal["nlbayes", "pixelwise"]
#: ``noise`` (``nlmeans._validate.NOISE_MODELS``)
NoiseModel: TypeAlias = Literal["gaussian", "poisson", "poisson-gaussian", "rician"]
#: ``patch_weights`` (``nlmeans.presets.PATCH_WEIGHTS``)
PatchWeights: TypeAlias = Literal["flat", "gaussian"]
#: what the strip-by-strip functions read and write: anything with ``shape``, ``dtype`` and numpy slicing (an
#: ndarray, a memmap, a zarr or h5py array, a dask array); no common static type exists for these
ArrayStore: TypeAlias = Any
