"""Normalisation stage: directions, parameters and the constant-indicator policy around the kernels.

:data:`NORMALISERS` maps each registered method name (:mod:`engine.methods`) to its Numba
kernel, its reference twin and a function building the per-column parameter arrays.  Directions
follow COINr: values are multiplied by the direction first; goalposts and targets given in the indicator's
units are flipped to match, so a
direction -1 indicator gets ``(hi - x) / (hi - lo)`` with goalposts and ``(max - x) / (max - target)``
with a target.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from .. import methods
from ..errors import ConstantIndicatorWarning, DataError
from ..schema import Indicator

__all__ = ["CONSTANT_POLICY", "FIXED", "NORMALISERS", "NON_NEGATIVE", "normalise", "check_domain", "Normaliser"]

#: Methods whose formula needs every input >= 0 (after treatment and direction): x / max reverses
#: the order of negative values.
NON_NEGATIVE = ("fraction_of_max",)
#: Where ``defaults.constant_indicator`` acts on a column of one distinct value ``v`` over ``n``
#: present units: the statistic the method divides by is zero.  Other methods give every unit the
#: same value (ranks, percentiles of n > 1, x / max of v > 0, distance to a target) or score ``v``
#: on fixed goalposts like any other value.
CONSTANT_POLICY = {"minmax": lambda v, n: True, "zscore": lambda v, n: True, "distance_to_max": lambda v, n: True,
                   "fraction_of_max": lambda v, n: v == 0, "percentile": lambda v, n: n == 1}
#: Methods with fixed parameters: a constant column is scored on its goalposts like any other (no
#: policy, no warning) -- e.g. a period of a panel normalised on the whole panel.
FIXED = ("goalposts",)


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


def _ties(inds, midpoint):
    return (_array(methods.TIES[i.normalisation["ties"]] for i in inds),)


def _exponential(inds, midpoint):
    return (_array(i.normalisation["c"] for i in inds),)


_PARAMS = {"minmax": _minmax, "zscore": _zscore, "rank": _ties, "exponential": _exponential,
           "borda": lambda inds, midpoint: (), "percentile": _scaled, "fraction_of_max": _scaled,
           "distance_to_max": _scaled, "distance_to_target": _target, "goalposts": _goalposts}
#: Every registered normalisation method (:data:`engine.methods.NORMALISATION`, in code order): its
#: kernel, twin and parameter builder.
NORMALISERS: dict[str, Normaliser] = {name: Normaliser(m.kernel, m.twin, _PARAMS[name])
                                      for name, m in methods.NORMALISATION.items()}


def check_domain(directed: np.ndarray, indicators: tuple[Indicator, ...], units: Sequence | None = None) -> None:
    """Refuse values a method cannot take, checked on what it receives: ``directed`` is the treated
    matrix times the directions (after denominate, impute, screen and treat).

    Raises
    ------
    DataError
        A :data:`NON_NEGATIVE` method with a negative value (e.g. the log of the ``log`` or
        ``skew_kurtosis`` treatment is negative below 1), naming the indicator, the units and the fix.
    """
    for j, ind in enumerate(indicators):
        if ind.normalisation.name not in NON_NEGATIVE:
            continue
        column = directed[:, j]
        negative = np.isfinite(column) & (column < 0)
        if not negative.any():
            continue
        treatment = ind.treatment.name
        steps = (f"the {treatment} treatment and " if treatment != "none" else "") + "the direction"
        why = (" (the log of a value below 1 is negative)" if treatment == "log" else
               " (it may take log(x - min + 0.01 range), which is negative wherever x - min + 0.01 range < 1)"
               if treatment == "skew_kurtosis" else " (direction -1 makes them negative)" if ind.direction < 0 else "")
        raise DataError(f"{ind.normalisation.name} needs values >= 0 after {steps}, but {int(negative.sum())} of "
                        f"{int(np.isfinite(column).sum())} are negative (lowest {float(column[negative].min()):.6g})"
                        f"{why}; x / max would reverse their order",
                        node=ind.id, column=", ".join(ind.source_columns),
                        units=None if units is None else [units[int(i)] for i in np.flatnonzero(negative)],
                        fix="use minmax or distance_to_max for this indicator (they take any values)"
                        + (", or treatment: {method: none}" if treatment != "none" else ""))


def _single_value(column: np.ndarray) -> bool:
    """Whether the finite values of ``column`` are one distinct value (min == max: O(n), no sort)."""
    present = column[np.isfinite(column)]
    return present.size > 0 and present.min() == present.max()


def _single_values(directed: np.ndarray) -> np.ndarray:
    """:func:`_single_value` of every column (bool (n_cols,)): NaN-ignoring min and max over the
    rows in one pass without copies; the exact test only for a column with an infinite min or max."""
    low, high = np.fmin.reduce(directed, axis=0), np.fmax.reduce(directed, axis=0)
    single = low == high  # all NaN: NaN == NaN is False
    for j in np.flatnonzero(np.isinf(low) | np.isinf(high)):
        single[j] = _single_value(directed[:, j])
    return single


def normalise(x: np.ndarray, indicators: tuple[Indicator, ...], constant_policy: str = "midpoint",
              *, use_reference: bool = False, units: Sequence | None = None) -> np.ndarray:
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
    units
        Unit ids of the rows (named by errors): a sequence or a Polars Series.

    Raises
    ------
    DataError
        From :func:`check_domain`, before anything is computed.

    Warns
    -----
    ConstantIndicatorWarning
        For indicators with a single distinct value, naming them and the policy applied
        (:data:`CONSTANT_POLICY` methods) or saying that every unit ties (other fitted methods);
        not for goalposts (:data:`FIXED`), which score a constant column like any other.
    """
    directed = np.ascontiguousarray(x * np.array([i.direction for i in indicators], dtype=np.float64))
    check_domain(directed, indicators, units)
    single = _single_values(directed)
    policy, tied = [], []
    for j, ind in enumerate(indicators):
        if ind.normalisation.name in FIXED or not single[j]:
            continue
        present = directed[np.isfinite(directed[:, j]), j]
        degenerate = CONSTANT_POLICY.get(ind.normalisation.name, lambda v, n: False)(present[0], present.size)
        (policy if degenerate else tied).append(ind.id)
    if policy:
        warnings.warn(f"constant indicator(s) {', '.join(policy)}: policy {constant_policy!r} applied "
                      "(see defaults.constant_indicator)", ConstantIndicatorWarning, stacklevel=2)
    if tied:
        warnings.warn(f"constant indicator(s) {', '.join(tied)}: every unit ties, so every unit gets the same "
                      "normalised value", ConstantIndicatorWarning, stacklevel=2)
    by_method: dict[str, list[int]] = {}
    for j, ind in enumerate(indicators):
        by_method.setdefault(ind.normalisation.name, []).append(j)
    # one method for every column (the usual case): no copies in or out (10^6 units x 25: 0.5 s)
    out = np.full(directed.shape, np.nan) if len(by_method) > 1 else None
    for name, cols in by_method.items():
        entry = NORMALISERS[name]
        params = entry.params([indicators[j] for j in cols], constant_policy == "midpoint")
        block = directed if out is None else np.ascontiguousarray(directed[:, cols])
        if use_reference:
            result = entry.reference(block, *params)
        else:
            result = entry.kernel(block, *params, np.empty_like(block) if out is not None else block)
        if out is None:
            return np.ascontiguousarray(result, dtype=np.float64)
        out[:, cols] = result
    return out
