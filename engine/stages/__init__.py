"""Pipeline stages, each a pure function on arrays: denominate → impute → screen → treat →
normalise → aggregate → rescale → rank.  :mod:`engine.pipeline` composes them into a recorded
recipe; each stage can also be called alone."""

from .aggregate import aggregate, rescale
from .impute import impute, screen
from .normalise import NORMALISERS, normalise
from .rank import rank, rank_dtype
from .treat import denominate, kurtosis, skewness, treat

__all__ = ["denominate", "impute", "screen", "treat", "normalise", "aggregate", "rescale", "rank",
           "rank_dtype", "skewness", "kurtosis", "NORMALISERS"]
