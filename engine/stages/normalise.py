"""Normalisation stage: directions, parameters and the constant-indicator policy around the kernels.

The registry maps each schema method name to its Numba kernel, its reference twin and a function
building the per-column parameter arrays.  Directions follow COINr: values are multiplied by the
direction first; goalposts and targets given in the indicator's units are flipped to match, so a
direction -1 indicator gets ``(hi - x) / (hi - lo)`` with goalposts and ``(max - x) / (max - target)``
with a target.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..errors import ConstantIndicatorWarning
from ..kernels import normalise as kernels
from ..kernels import reference
from ..schema import Indicator

__all__ = ["NORMALISERS", "normalise", "Normaliser"]


@dataclass(frozen=True)
class Normaliser:
    kernel: Callable  #: Numba kernel ``f(x, *params, out)``.
    reference: Callable  #: Readable twin ``f(x, *params) -> array``.
    params: Callable[[list[Indicator], bool], tuple[np.ndarray, ...]]  #: (indicators, midpoint?) -> params.


def _array(values) -> np.ndarray:
    return np.asarray(list(values), dtype=np.float64)


def _fill(midpoints: np.ndarray, midpoint: bool) -> np.ndarray:
    return midpoints if midpoint else np.full(midpoints.shape, np.nan)


def _minmax(inds, midpoint):
    lo = _array(i.normalisation["range"][0] for i in inds)
    hi = _array(i.normalisation["range"][1] for i in inds)
    return lo, hi, _fill((lo + hi) / 2, midpoint)


def _zscore(inds, midpoint):
    mean = _array(i.normalisation["mean"] for i in inds)
    return mean, _array(i.normalisation["sd"] for i in inds), _fill(mean, midpoint)


def _scaled(inds, midpoint):
    scale = _array(i.normalisation["scale"] for i in inds)
    return scale, _fill(scale / 2, midpoint)


def _target(inds, midpoint):
    scale = _array(i.normalisation["scale"] for i in inds)
    target = _array(i.normalisation["target"] * i.direction for i in inds)
    cap = np.array([bool(i.normalisation["cap"]) for i in inds])
    return target, scale, cap  # no degenerate case: target <= min means every unit reached it


def _goalposts(inds, midpoint):
    posts = [sorted(p * i.direction for p in i.normalisation["goalposts"]) for i in inds]
    return _array(p[0] for p in posts), _array(p[1] for p in posts), _array(i.normalisation["scale"] for i in inds)


NORMALISERS: dict[str, Normaliser] = {
    "minmax": Normaliser(kernels.minmax, reference.minmax, _minmax),
    "zscore": Normaliser(kernels.zscore, reference.zscore, _zscore),
    "rank": Normaliser(kernels.rank, reference.rank, lambda inds, midpoint: ()),
    "borda": Normaliser(kernels.borda, reference.borda, lambda inds, midpoint: ()),
    "percentile": Normaliser(kernels.percentile, reference.percentile, _scaled),
    "fraction_of_max": Normaliser(kernels.fraction_of_max, reference.fraction_of_max, _scaled),
    "distance_to_max": Normaliser(kernels.distance_to_max, reference.distance_to_max, _scaled),
    "distance_to_target": Normaliser(kernels.distance_to_target, reference.distance_to_target, _target),
    "goalposts": Normaliser(kernels.goalposts, reference.goalposts, _goalposts),
}


def normalise(x: np.ndarray, indicators: tuple[Indicator, ...], constant_policy: str = "midpoint",
              *, use_reference: bool = False) -> np.ndarray:
    """Normalise every column of ``x`` (n_units, n_indicators) with its indicator's method.

    Parameters
    ----------
    x
        Treated values, columns in framework order.
    indicators
        The framework's indicators (methods, parameters, directions).
    constant_policy
        ``midpoint`` or ``missing`` (``error`` is enforced earlier, by :func:`engine.data.prepare`).
    use_reference
        Run the readable twins instead of the kernels (for checks and baselines).

    Warns
    -----
    ConstantIndicatorWarning
        For indicators with a single distinct value, naming them and the policy applied.
    """
    directed = np.ascontiguousarray(x * np.array([i.direction for i in indicators], dtype=np.float64))
    out = np.full(directed.shape, np.nan)
    constant = [ind.id for j, ind in enumerate(indicators)
                if np.unique(directed[np.isfinite(directed[:, j]), j]).size == 1]
    if constant:
        warnings.warn(f"constant indicator(s) {', '.join(constant)}: policy {constant_policy!r} applied "
                      "(see defaults.constant_indicator)", ConstantIndicatorWarning, stacklevel=2)
    by_method: dict[str, list[int]] = {}
    for j, ind in enumerate(indicators):
        by_method.setdefault(ind.normalisation.name, []).append(j)
    for name, cols in by_method.items():
        entry = NORMALISERS[name]
        params = entry.params([indicators[j] for j in cols], constant_policy == "midpoint")
        block = np.ascontiguousarray(directed[:, cols])
        if use_reference:
            result = entry.reference(block, *params)
        else:
            result = entry.kernel(block, *params, np.empty_like(block))
        out[:, cols] = result
    return out
