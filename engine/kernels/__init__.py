"""Numba kernels (normalise, aggregate, rank) and their readable twins (:mod:`.reference`).

Kernels take contiguous float64 arrays and write into ``out``; they do no validation and read no
globals.  Validation, directions and Polars live one layer up (:mod:`engine.stages`).
"""

from . import aggregate, normalise, rank, reference
from ._jit import parallel_kernels_threadsafe

__all__ = ["aggregate", "normalise", "parallel_kernels_threadsafe", "rank", "reference"]
