"""Data layer: files → Polars → validated, contiguous float64 arrays.

Polars and column names stop here: :func:`prepare` returns the arrays the kernels work on.
"""

from .load import Dataset, load_data
from .prepare import Inputs, prepare

__all__ = ["Dataset", "load_data", "Inputs", "prepare"]
