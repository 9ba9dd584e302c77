"""Aggregation kernels: one node from its children, and the whole tree in post-order.

``values`` is (n_units, k) for one node's children, ``weights`` (k,) sums to 1 (the caller
renormalises within each parent).  Policies, shared with :mod:`engine.kernels.reference`:

* missing (non-finite) components are skipped and the weights renormalised over the present ones
  (COINr ``a_amean``);
* coverage: the result is missing when no component is present or when the share of present
  components is below ``min_coverage``;
* geometric/harmonic/generalised means need inputs >= 0 (checked statically by the schema): a
  negative component makes the result missing, a zero component gives 0 when p <= 0;
* Copeland: units below the coverage threshold get no score and are nobody's opponent.
"""

from __future__ import annotations

import math

import numpy as np

from ..methods import ARITHMETIC, GENERALISED, GEOMETRIC, HARMONIC
from ._jit import JIT, jit, njit

__all__ = ["arithmetic", "geometric", "harmonic", "generalised", "copeland", "aggregate_tree"]


@jit
def _present(row, min_coverage):
    """Number of present components, or 0 when coverage is below the threshold."""
    count = 0
    for v in row:
        if np.isfinite(v):
            count += 1
    if count / row.shape[0] < min_coverage:
        return 0
    return count


@njit(**JIT, inline="always")  # inlined in Numba's IR: the hot loops of the Monte Carlo tree call it per unit
def mean_term(code, p, top, w, v, num, den):
    """A present component ``v`` of weight ``w`` added to a mean's running sums ``(num, den)``.

    With :func:`mean_value`, the one home of the formulas of the arithmetic, geometric, harmonic and
    generalised means: these kernels (the pipeline, the bootstrap) and the Monte Carlo's tree
    (:func:`engine.kernels.montecarlo.tree_scores`) call them, so each formula is written once.
    The logarithm and power terms need ``v > 0`` except a power with p > 0 (callers deal with zero and
    negative components first); ``top`` is the power mean's scale (the row maximum for p > 0, the
    minimum for p < 0), unused by the other means.  ``math.log``/``math.exp``, not ``np.log``/``np.exp``:
    compiled they are the same libm calls, but run as plain Python (``NUMBA_DISABLE_JIT=1``) NumPy ≥ 2.4
    computes scalar ``np.log``/``np.exp`` with its own SIMD code, up to 1 ulp away from libm and the twins."""
    if code == ARITHMETIC:
        return num + w * v, den + w
    if code == HARMONIC:
        return num + w, den + w / v
    if code == GEOMETRIC or p == 0.0:
        return num + w * math.log(v), den + w
    return num + w * (v / top) ** p, den + w


@njit(**JIT, inline="always")
def mean_value(code, p, top, num, den):
    """The mean from the running sums of :func:`mean_term`."""
    if code == ARITHMETIC or code == HARMONIC:
        return num / den
    if code == GEOMETRIC or p == 0.0:
        return math.exp(num / den)
    return (num / den) ** (1.0 / p) * top


@jit
def arithmetic(values, weights, min_coverage, out):
    """sum(w x) / sum(w) over present components."""
    for i in range(values.shape[0]):
        if _present(values[i], min_coverage) == 0:
            out[i] = np.nan
            continue
        num = 0.0
        den = 0.0
        for k in range(values.shape[1]):
            v = values[i, k]
            if np.isfinite(v):
                num, den = mean_term(ARITHMETIC, 0.0, 1.0, weights[k], v, num, den)
        out[i] = mean_value(ARITHMETIC, 0.0, 1.0, num, den)
    return out


@jit
def generalised(values, weights, p, min_coverage, out):
    """(sum(w x^p) / sum(w))^(1/p) over present components, computed as
    M (sum(w (x/M)^p) / sum(w))^(1/p) with M the row maximum (p > 0) or minimum (p < 0), so that
    no power overflows; p = 0:
    exp(sum(w log x) / sum(w))."""
    for i in range(values.shape[0]):
        out[i] = np.nan
        if _present(values[i], min_coverage) == 0:
            continue
        negative = False
        zero = False
        for k in range(values.shape[1]):
            v = values[i, k]
            if np.isfinite(v):
                if v < 0.0:
                    negative = True
                elif v == 0.0:
                    zero = True
        if negative:
            continue
        if p <= 0.0 and zero:
            out[i] = 0.0
            continue
        # Scale M: the row maximum for p > 0, the minimum for p < 0, so (x/M)^p <= 1 never overflows.
        top = 0.0 if p > 0.0 else np.inf
        for k in range(values.shape[1]):
            v = values[i, k]
            if np.isfinite(v) and ((p > 0.0 and v > top) or (p < 0.0 and v < top)):
                top = v
        if top == 0.0:
            out[i] = 0.0
            continue
        num = 0.0
        den = 0.0
        for k in range(values.shape[1]):
            v = values[i, k]
            if np.isfinite(v):
                num, den = mean_term(GENERALISED, p, top, weights[k], v, num, den)
        out[i] = mean_value(GENERALISED, p, top, num, den)
    return out


@jit
def geometric(values, weights, min_coverage, out):
    """Weighted geometric mean; a zero component gives 0."""
    return generalised(values, weights, 0.0, min_coverage, out)


@jit
def harmonic(values, weights, min_coverage, out):
    """sum(w) / sum(w / x) over present components; a zero component gives 0."""
    for i in range(values.shape[0]):
        out[i] = np.nan
        if _present(values[i], min_coverage) == 0:
            continue
        negative = False
        zero = False
        for k in range(values.shape[1]):
            v = values[i, k]
            if np.isfinite(v):
                if v < 0.0:
                    negative = True
                elif v == 0.0:
                    zero = True
        if negative:
            continue
        if zero:
            out[i] = 0.0
            continue
        num = 0.0
        den = 0.0
        for k in range(values.shape[1]):
            v = values[i, k]
            if np.isfinite(v):
                num, den = mean_term(HARMONIC, 0.0, 1.0, weights[k], v, num, den)
        out[i] = mean_value(HARMONIC, 0.0, 1.0, num, den)
    return out


@jit
def copeland(values, weights, min_coverage, out):
    """Weighted Copeland score: sum over opponents j of sign(ahead_ij - behind_ij), where ahead_ij
    (behind_ij) is the weight of the components both units have and where i is ahead (behind).

    This is sign(share_ij - 1/2) with share_ij = (ahead + tied / 2) / (ahead + tied + behind), but
    compared without forming the share: behind_ij is ahead_ji summed in the same order, so the
    comparison is antisymmetric bit for bit and the scores of a node sum to zero (a share of exactly
    one half computed in floating point can land on either side).  O(n_units^2 k)."""
    n, k_count = values.shape
    scored = np.zeros(n, np.bool_)
    for i in range(n):
        scored[i] = _present(values[i], min_coverage) > 0
    for i in range(n):
        if not scored[i]:
            out[i] = np.nan
            continue
        score = 0.0
        for j in range(n):
            if j == i or not scored[j]:
                continue
            ahead = 0.0
            behind = 0.0
            for k in range(k_count):
                a = values[i, k]
                b = values[j, k]
                if np.isfinite(a) and np.isfinite(b):
                    if a > b:
                        ahead += weights[k]
                    elif a < b:
                        behind += weights[k]
            if ahead > behind:
                score += 1.0
            elif ahead < behind:
                score -= 1.0
        out[i] = score
    return out


@jit
def aggregate_node(block, weights, code, p, min_coverage, out):
    """Dispatch one node to its method (codes: :mod:`engine.methods`)."""
    if code == ARITHMETIC:
        arithmetic(block, weights, min_coverage, out)
    elif code == GEOMETRIC:
        geometric(block, weights, min_coverage, out)
    elif code == HARMONIC:
        harmonic(block, weights, min_coverage, out)
    elif code == GENERALISED:
        generalised(block, weights, p, min_coverage, out)
    else:
        copeland(block, weights, min_coverage, out)
    return out


def aggregate_tree(values, child_ptr, child_idx, child_weight, method, param, min_coverage):
    """Fill the aggregate columns of ``values`` (n_units, n_nodes) in place, in post-order.

    Columns 0 .. n_nodes - len(method) - 1 are the normalised indicators; aggregate ``a`` is column
    ``n_indicators + a`` and its children are ``child_idx[child_ptr[a]:child_ptr[a+1]]``.

    A Python walk over the aggregates that calls the Numba kernel of each node's method on a
    contiguous copy of its children's columns (the floats of :func:`aggregate_node`): a first run
    compiles only the methods the framework uses, not every method as one kernel dispatching on the
    code at run time would (most of the JIT time of a first ``cityrank score``).  One call per
    aggregate node, so the walk costs microseconds per node.
    """
    n_indicators = values.shape[1] - method.shape[0]
    column = np.empty(values.shape[0], np.float64)
    for a in range(method.shape[0]):
        start, stop = child_ptr[a], child_ptr[a + 1]
        block = np.ascontiguousarray(values[:, child_idx[start:stop]], dtype=np.float64)
        weights = child_weight[start:stop]
        code = method[a]
        if code == GENERALISED:
            generalised(block, weights, param[a], min_coverage[a], column)
        else:
            _FIXED.get(int(code), copeland)(block, weights, min_coverage[a], column)
        values[:, n_indicators + a] = column
    return values


#: The kernel of every aggregation method without a parameter, by code (any other code: Copeland,
#: as in :func:`aggregate_node`).
_FIXED = {ARITHMETIC: arithmetic, GEOMETRIC: geometric, HARMONIC: harmonic}
