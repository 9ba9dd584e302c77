"""Readable reference twins of every Numba kernel.

Each function here has the same name and meaning as a kernel in ``normalise.py``,
``aggregate.py`` or ``rank.py`` but is written as plain Python loops that read like the formula.
They return a new array instead of writing into ``out``.  Tests compare every kernel with its twin
over an edge catalogue and with Hypothesis; benchmarks use them as the slowest baseline.

Shared policies (identical in both homes):

* A non-finite input (NaN, +inf, -inf) is missing: its output is NaN and it takes no part in
  the statistics (min, max, mean, ranks) of its column.
* ``fill`` is the value every non-missing unit gets when the statistic a method divides by is
  zero (a constant column, a single unit, max = 0); NaN means "missing" (the constant-indicator
  policy is resolved by :mod:`engine.normalise`).
* Ranks: ``rank`` is ascending (smallest = 1), ``rank_desc`` descending (largest = 1); ties share
  the minimum rank (1, 2, 2, 4); missing stays missing.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np

from ..methods import (
    ARITHMETIC,
    BORDA,
    COPELAND,
    DISTANCE_TO_MAX,
    DISTANCE_TO_TARGET,
    EXPONENTIAL,
    FRACTION_OF_MAX,
    GENERALISED,
    GEOMETRIC,
    GOALPOSTS,
    HARMONIC,
    MINMAX,
    PERCENTILE,
    RANK,
    ZSCORE,
)

__all__ = [
    "minmax", "zscore", "rank", "borda", "percentile", "fraction_of_max", "distance_to_max",
    "distance_to_target", "goalposts", "exponential",
    "arithmetic", "geometric", "harmonic", "generalised", "copeland", "aggregate_tree",
    "rank_desc", "rank_ordered",
    "jenks", "quantile_tiers",
    "montecarlo_scores", "montecarlo_accumulate", "noise_weights",
    "normalise_column", "bootstrap_blocks",
    "rank_change",
    "rank_batch", "count_bands", "count_windows",
]


def _finite(values) -> list[float]:
    return [v for v in values if math.isfinite(v)]


def _per_column(x: np.ndarray, column_fn) -> np.ndarray:
    n_units, n_cols = x.shape
    out = np.full((n_units, n_cols), np.nan)
    for j in range(n_cols):
        out[:, j] = column_fn(j, [float(v) for v in x[:, j]])
    return out


# ----------------------------------------------------------------------------- normalisation

def minmax(x: np.ndarray, lo: np.ndarray, hi: np.ndarray, fill: np.ndarray) -> np.ndarray:
    """``(x - min) / (max - min) * (hi - lo) + lo``; constant column -> ``fill``."""

    def column(j, values):
        present = _finite(values)
        result = []
        for v in values:
            if not math.isfinite(v):
                result.append(math.nan)
            elif max(present) == min(present):
                result.append(fill[j])
            else:
                result.append((v - min(present)) / (max(present) - min(present)) * (hi[j] - lo[j]) + lo[j])
        return result

    return _per_column(x, column)


def zscore(x: np.ndarray, mean: np.ndarray, sd: np.ndarray, fill: np.ndarray) -> np.ndarray:
    """``(x - mean(x)) / sd(x) * sd + mean`` with the sample sd (n - 1); a constant column (min = max)
    or n < 2 -> ``fill``."""

    def column(j, values):
        present = _finite(values)
        n = len(present)
        centre = sum(present) / n if n else math.nan
        constant = n < 2 or max(present) == min(present)
        spread = 0.0 if constant else math.sqrt(sum((v - centre) * (v - centre) for v in present) / (n - 1))
        return [math.nan if not math.isfinite(v) else
                fill[j] if spread == 0.0 else (v - centre) / spread * sd[j] + mean[j] for v in values]

    return _per_column(x, column)


def _rank_ascending(values: list[float], average: bool = False) -> list[float]:
    """1 + the number of present values strictly smaller (ties share the minimum rank); ``average``:
    the mean of the positions a group of ties occupies, (number smaller) + (number equal + 1) / 2."""
    present = _finite(values)
    if average:
        return [math.nan if not math.isfinite(v) else
                sum(1 for w in present if w < v) + (sum(1 for w in present if w == v) + 1.0) / 2.0 for v in values]
    return [math.nan if not math.isfinite(v) else 1.0 + sum(1 for w in present if w < v) for v in values]


def rank(x: np.ndarray, ties: np.ndarray) -> np.ndarray:
    """Ascending rank within the column (smallest = 1); ties share the minimum rank (``ties[j] = 0``)
    or the average of their positions (``ties[j] = 1``)."""
    return _per_column(x, lambda j, values: _rank_ascending(values, ties[j] == 1.0))


def exponential(x: np.ndarray, c: np.ndarray) -> np.ndarray:
    """IoD exponential transformation ``-c ln(1 - R (1 - exp(-100 / c)))``, ``R`` = ascending rank
    with ties averaged / number of present units (IoD2019 Technical Report, App. F)."""

    def column(j, values):
        n = len(_finite(values))
        # -c ln(1 - R (1 - exp(-100/c))) = -c ln((1 - R) + R exp(-100/c)), R = rank / n
        return [math.nan if not math.isfinite(r) else -c[j] * math.log((1.0 - r / n) + r / n * math.exp(-100.0 / c[j]))
                for r in _rank_ascending(values, average=True)]

    return _per_column(x, column)


def borda(x: np.ndarray) -> np.ndarray:
    """Borda score: ascending rank - 1 (the number of units strictly below)."""
    return _per_column(x, lambda j, values: [r - 1.0 for r in _rank_ascending(values)])


def percentile(x: np.ndarray, scale: np.ndarray, fill: np.ndarray) -> np.ndarray:
    """Percentile rank ``(rank - 1) / (n - 1) * scale``; a single present unit -> ``fill``."""

    def column(j, values):
        n = len(_finite(values))
        return [math.nan if not math.isfinite(r) else fill[j] if n == 1 else (r - 1.0) / (n - 1) * scale[j]
                for r in _rank_ascending(values)]

    return _per_column(x, column)


def fraction_of_max(x: np.ndarray, scale: np.ndarray, fill: np.ndarray) -> np.ndarray:
    """``x / max(x) * scale``; max = 0 -> ``fill``."""

    def column(j, values):
        top = max(_finite(values), default=math.nan)
        return [math.nan if not math.isfinite(v) else fill[j] if top == 0.0 else v / top * scale[j]
                for v in values]

    return _per_column(x, column)


def distance_to_max(x: np.ndarray, scale: np.ndarray, fill: np.ndarray) -> np.ndarray:
    """``(1 - (max - x) / (max - min)) * scale``; constant column -> ``fill``."""

    def column(j, values):
        present = _finite(values)
        top, bottom = (max(present), min(present)) if present else (math.nan, math.nan)
        return [math.nan if not math.isfinite(v) else fill[j] if top == bottom else
                (1.0 - (top - v) / (top - bottom)) * scale[j] for v in values]

    return _per_column(x, column)


def distance_to_target(x: np.ndarray, target: np.ndarray, scale: np.ndarray, cap: np.ndarray) -> np.ndarray:
    """``(1 - (target - x) / (target - min)) * scale``, capped at ``scale`` where ``cap``; when no
    unit falls short of the target (target <= min) every unit gets ``scale``.  (Direction is
    applied to x and target before the call.)"""

    def column(j, values):
        present = _finite(values)
        bottom = min(present) if present else math.nan
        result = []
        for v in values:
            if not math.isfinite(v):
                result.append(math.nan)
            elif target[j] <= bottom:
                result.append(scale[j])  # every unit has reached the target
            else:
                d = 1.0 - (target[j] - v) / (target[j] - bottom)
                if cap[j] and d > 1.0:
                    d = 1.0
                result.append(d * scale[j])
        return result

    return _per_column(x, column)


def goalposts(x: np.ndarray, lo: np.ndarray, hi: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """``clamp((x - lo) / (hi - lo), 0, 1) * scale``."""

    def column(j, values):
        return [math.nan if not math.isfinite(v) else
                min(1.0, max(0.0, (v - lo[j]) / (hi[j] - lo[j]))) * scale[j] for v in values]

    return _per_column(x, column)


# ----------------------------------------------------------------------------- aggregation

def _covered(row: list[float], min_coverage: float) -> list[int] | None:
    """Indices of present components, or None when coverage is below the threshold (or zero)."""
    present = [k for k, v in enumerate(row) if math.isfinite(v)]
    if not present or len(present) / len(row) < min_coverage:
        return None
    return present


def arithmetic(values: np.ndarray, weights: np.ndarray, min_coverage: float) -> np.ndarray:
    """``sum(w x) / sum(w)`` over the present components (weights renormalised)."""
    out = np.full(values.shape[0], np.nan)
    for i, row in enumerate(values.tolist()):
        present = _covered(row, min_coverage)
        if present is not None:
            out[i] = sum(weights[k] * row[k] for k in present) / sum(weights[k] for k in present)
    return out


def generalised(values: np.ndarray, weights: np.ndarray, p: float, min_coverage: float) -> np.ndarray:
    """Weighted power mean ``(sum(w x^p) / sum(w))^(1/p)``; p = 0 is the geometric mean.

    Inputs must be >= 0: a negative component makes the result missing; a zero component gives 0
    when p <= 0 (the limit)."""
    out = np.full(values.shape[0], np.nan)
    for i, row in enumerate(values.tolist()):
        present = _covered(row, min_coverage)
        if present is None or any(row[k] < 0 for k in present):
            continue
        total = sum(weights[k] for k in present)
        # Scale M: the row maximum for p > 0, the minimum for p < 0, so (x/M)^p <= 1 never overflows.
        top = max(row[k] for k in present) if p > 0 else min(row[k] for k in present)
        if p <= 0 and any(row[k] == 0 for k in present):
            out[i] = 0.0
        elif top == 0:
            out[i] = 0.0
        elif p == 0:
            out[i] = math.exp(sum(weights[k] * math.log(row[k]) for k in present) / total)
        else:
            out[i] = (sum(weights[k] * float(row[k] / top) ** float(p) for k in present) / total) ** (1.0 / p) * top
    return out


def geometric(values: np.ndarray, weights: np.ndarray, min_coverage: float) -> np.ndarray:
    """Weighted geometric mean ``exp(sum(w log x) / sum(w))``; a zero component gives 0."""
    return generalised(values, weights, 0.0, min_coverage)


def harmonic(values: np.ndarray, weights: np.ndarray, min_coverage: float) -> np.ndarray:
    """Weighted harmonic mean ``sum(w) / sum(w / x)``; a zero component gives 0."""
    out = np.full(values.shape[0], np.nan)
    for i, row in enumerate(values.tolist()):
        present = _covered(row, min_coverage)
        if present is None or any(row[k] < 0 for k in present):
            continue
        if any(row[k] == 0 for k in present):
            out[i] = 0.0
        else:
            out[i] = sum(weights[k] for k in present) / sum(weights[k] / row[k] for k in present)
    return out


def copeland(values: np.ndarray, weights: np.ndarray, min_coverage: float) -> np.ndarray:
    """Weighted Copeland outranking score: wins minus losses against every other scored unit.

    Unit i beats j when the weight of the components (both units have) where i is ahead exceeds the
    weight of those where i is behind, i.e. when (ahead + ties / 2) / total > 1/2, compared without
    the division so that i beats j exactly when j loses to i; units below the coverage threshold
    get no score and are no one's opponent."""
    rows = values.tolist()
    scored = [_covered(row, min_coverage) is not None for row in rows]
    out = np.full(len(rows), np.nan)
    for i, row_i in enumerate(rows):
        if not scored[i]:
            continue
        score = 0.0
        for j, row_j in enumerate(rows):
            if j == i or not scored[j]:
                continue
            both = [k for k in range(len(row_i)) if math.isfinite(row_i[k]) and math.isfinite(row_j[k])]
            ahead = sum(weights[k] for k in both if row_i[k] > row_j[k])
            behind = sum(weights[k] for k in both if row_i[k] < row_j[k])
            score += 1.0 if ahead > behind else -1.0 if ahead < behind else 0.0
        out[i] = score
    return out


def _aggregate_block(block: np.ndarray, w: np.ndarray, code: int, p: float, min_coverage: float) -> np.ndarray:
    """One node's column by its method code (:mod:`engine.methods`)."""
    if code == GENERALISED:
        return generalised(block, w, p, min_coverage)
    return {ARITHMETIC: arithmetic, GEOMETRIC: geometric, HARMONIC: harmonic, COPELAND: copeland}[code](
        block, w, min_coverage)


def aggregate_tree(values: np.ndarray, child_ptr: np.ndarray, child_idx: np.ndarray,
                   child_weight: np.ndarray, method: np.ndarray, param: np.ndarray,
                   min_coverage: np.ndarray) -> np.ndarray:
    """Compute every aggregate column of ``values`` (n_units, n_nodes) from its children, in
    post-order (see :class:`engine.schema.CompiledTree`); indicator columns are kept."""
    result = np.array(values, dtype=np.float64, copy=True)
    n_indicators = result.shape[1] - len(method)
    for a in range(len(method)):
        kids = child_idx[child_ptr[a]:child_ptr[a + 1]]
        w = child_weight[child_ptr[a]:child_ptr[a + 1]]
        result[:, n_indicators + a] = _aggregate_block(result[:, kids], w, int(method[a]), param[a],
                                                       min_coverage[a])
    return result


# ----------------------------------------------------------------------------- ranking

def rank_desc(x: np.ndarray) -> np.ndarray:
    """Descending competition rank per column: 1 + the number of present values strictly larger."""

    def column(j, values):
        present = _finite(values)
        return [math.nan if not math.isfinite(v) else 1.0 + sum(1 for w in present if w > v) for v in values]

    return _per_column(x, column)


def rank_ordered(x: np.ndarray, order: np.ndarray) -> np.ndarray:
    """Twin of :func:`engine.kernels.rank.rank_ordered`: descending competition ranks of one column,
    1 + the number of present values strictly larger (``order`` is not needed for that)."""
    return rank_desc(np.asarray(x, np.float64).reshape(-1, 1))[:, 0]


# ----------------------------------------------------------------------------- tiers

def quantile_tiers(ranks: np.ndarray, k: int) -> np.ndarray:
    """Quantile group by rank: ``ceil(rank * k / n)``, n = number of present (finite) ranks; 0 = missing."""
    n = sum(1 for r in ranks if math.isfinite(r))
    return np.array([math.ceil(Fraction(int(r) * k, n)) if math.isfinite(r) else 0 for r in ranks], dtype=np.int64)


def _two_sum(a: float, b: float) -> tuple[float, float]:
    s = a + b
    v = s - a
    return s, (a - (s - v)) + (b - v)


def _two_prod(a: float, b: float) -> tuple[float, float]:
    p = a * b
    ah = 134217729.0 * a - (134217729.0 * a - a)
    bh = 134217729.0 * b - (134217729.0 * b - b)
    al, bl = a - ah, b - bh
    return p, ((ah * bh - p) + ah * bl + al * bh) + al * bl


def _dd_add(a: tuple[float, float], b: tuple[float, float]) -> tuple[float, float]:
    s, e = _two_sum(a[0], b[0])
    e += a[1] + b[1]
    return s + e, e - ((s + e) - s)


def jenks(sorted_values: np.ndarray, k: int) -> np.ndarray:
    """Fisher–Jenks natural breaks: ``k + 1`` breaks (min, upper bound of each class) of the
    partition of ``sorted_values`` (ascending, finite) into ``k`` contiguous classes with the least
    total within-class sum of squares, by the plain O(k d²) dynamic programme (every start of the
    last class is tried; the kernel searches fewer, see :func:`engine.kernels.tiers.jenks`).

    Runs of equal values are never split (the DP works on the distinct values and their counts);
    ``k`` above the number ``d`` of distinct values gives ``d`` classes and repeats the max as the
    remaining breaks; on equal totals the highest class starts as late as possible, then the next.
    """
    distinct: list[float] = []
    counts: list[float] = []
    for v in sorted_values.tolist():
        if distinct and v == distinct[-1]:
            counts[-1] += 1.0
        else:
            distinct.append(v)
            counts.append(1.0)
    d = len(distinct)
    n_classes = min(k, d)

    # prefix sums of w, w·v and w·v² (the last two in double-double: (high, low))
    weight, s1, s2 = [0.0], [(0.0, 0.0)], [(0.0, 0.0)]
    for v, w in zip(distinct, counts):
        weight.append(weight[-1] + w)
        s1.append(_dd_add(s1[-1], _two_prod(w, v)))
        square, square_low = _two_prod(v, v)
        high, low = _two_prod(w, square)
        s2.append(_dd_add(s2[-1], (high, low + w * square_low)))

    def within_ss(i: int, j: int) -> float:
        """Weighted sum of squared deviations from their mean of distinct[i..j]: S2 − S1² / W in
        double-double, rounded and clamped at 0 (exactly 0 for one distinct value)."""
        if i == j:
            return 0.0
        w = weight[j + 1] - weight[i]
        a, a_low = _dd_add(s1[j + 1], (-s1[i][0], -s1[i][1]))
        b = _dd_add(s2[j + 1], (-s2[i][0], -s2[i][1]))
        square, square_low = _two_prod(a, a)
        square_low += 2.0 * a * a_low
        q = square / w
        p, p_low = _two_prod(q, w)
        r = ((square - p) - p_low + square_low) / w
        return max(_dd_add(b, (-q, -r))[0], 0.0)

    # best[c][j]: least total within-class SS of distinct[0..j] in c + 1 classes (j >= c);
    # first[c][j]: where the last of those classes starts.
    best = [[within_ss(0, j) for j in range(d)]]
    first = [[0] * d]
    for c in range(1, n_classes):
        best.append([math.nan] * d)
        first.append([0] * d)
        for j in range(c, d):
            lowest, start = math.inf, j
            for i in range(j, c - 1, -1):  # latest start first: it wins equal totals
                total = best[c - 1][i - 1] + within_ss(i, j)
                if total < lowest:
                    lowest, start = total, i
            best[c][j], first[c][j] = lowest, start

    uppers = []
    end = d - 1
    for c in range(n_classes - 1, -1, -1):
        uppers.append(distinct[end])
        end = first[c][end] - 1
    breaks = [distinct[0], *reversed(uppers)] + [distinct[-1]] * (k - n_classes)
    return np.array(breaks, dtype=np.float64)



# ----------------------------------------------------------------------------- Monte Carlo

def noise_weights(u, columns, nodes, phi, nominal):
    """Readable twin of :func:`engine.kernels.montecarlo.noise_weights`: the columns ``nodes`` of the
    node weights, ``nominal · (1 + φ (2U − 1))`` (n, len(nodes))."""
    return nominal[nodes] * (1.0 + phi * (2.0 * u[:, columns] - 1.0))


def _mc_local_weights(node_weight, excluded, child_ptr, child_idx):
    """Weights renormalised within each parent; the excluded indicator (if any) weighs 0."""
    local = [0.0] * len(node_weight)
    local[-1] = 1.0
    for a in range(len(child_ptr) - 1):
        kids = [int(c) for c in child_idx[child_ptr[a]:child_ptr[a + 1]] if c != excluded]
        total = sum(node_weight[c] for c in kids)
        for c in kids:
            local[c] = node_weight[c] / total if total > 0 else 0.0
    return local


def _mc_linear_score(z, local, child_ptr, child_idx, target):
    """Σ_j W_j z_j with W_j the product of local weights from indicator j up to the target."""
    n_ind, n_units = z.shape
    eff = [0.0] * len(local)
    eff[target] = 1.0
    for a in reversed(range(len(child_ptr) - 1)):
        node = n_ind + a
        if eff[node] == 0.0:
            continue  # outside the target's subtree
        for c in child_idx[child_ptr[a]:child_ptr[a + 1]]:
            eff[c] = eff[node] * local[c]
    score = [0.0] * n_units
    for j in range(n_ind):
        if eff[j] != 0.0:
            for i in range(n_units):
                score[i] += eff[j] * z[j, i]
    return score


def _mc_tree_values(z, local, child_ptr, child_idx, codes, param, min_coverage):
    """Every node's scores (rows = nodes), aggregating children in post-order; excluded children
    (local weight 0) are not components; coverage counts the remaining ones."""
    n_ind, n_units = z.shape
    values = [list(z[j]) for j in range(n_ind)] + [None] * (len(child_ptr) - 1)
    for a in range(len(child_ptr) - 1):
        kids = [int(c) for c in child_idx[child_ptr[a]:child_ptr[a + 1]] if local[c] != 0.0]
        w = np.array([local[c] for c in kids])
        block = np.array([[values[c][i] for c in kids] for i in range(n_units)]).reshape(n_units, len(kids))
        values[n_ind + a] = list(_aggregate_block(block, w, int(codes[a]), param[a], min_coverage[a]))
    return values


def _mc_replicate_scores(zt, linear_variant, child_ptr, child_idx, param, min_coverage, any_coverage,
                         node_weight, variant, agg_code, excluded, targets) -> list[list[float]]:
    """One replicate's scores of every target: plain weighted sums when the tree is all arithmetic
    on complete data without coverage thresholds, the tree evaluated node by node otherwise."""
    z = zt[variant]
    local = _mc_local_weights(node_weight, excluded, child_ptr, child_idx)
    if bool(linear_variant[variant]) and not any_coverage and all(c == ARITHMETIC for c in agg_code):
        return [_mc_linear_score(z, local, child_ptr, child_idx, target) for target in targets]
    values = _mc_tree_values(z, local, child_ptr, child_idx, agg_code, param, min_coverage)
    return [values[target] for target in targets]


def _competition_ranks(score) -> list[int]:
    """:func:`rank_desc` of one column as integers, missing → 0 (the Monte Carlo kernels' convention)."""
    return [0 if math.isnan(r) else int(r) for r in rank_desc(np.asarray(score, np.float64)[:, None])[:, 0]]


def _mc_accumulate(score, rank_t, nominal_rank, pair_units, hist, shift_hist, pair_count, moments) -> float:
    """Add one replicate of one target to the accumulators; returns its R_S."""
    n_units = len(score)
    total, ranked = 0, 0
    for i, ri in enumerate(rank_t):
        if ri > 0:
            hist[i, ri - 1] += 1
            moments[i, 0] += score[i]
            moments[i, 1] += score[i] * score[i]
            if nominal_rank[i] > 0:
                total += abs(ri - nominal_rank[i])
                ranked += 1
        else:
            hist[i, n_units] += 1
    shift_hist[total] += 1
    for pa, ua in enumerate(pair_units):
        for pb, ub in enumerate(pair_units):
            if rank_t[ua] > 0 and rank_t[ub] > 0 and rank_t[ua] < rank_t[ub]:
                pair_count[pa, pb] += 1
    return total / ranked if ranked else math.nan


def _accumulators(n_rep, n_t, n_units, n_pairs, block_size):
    """Empty Monte Carlo accumulators of the twins: rank histograms, rank-shift histograms
    (S ≤ n (n − 1)), pairwise counts, per-block moments, R_S per replicate (NaN until set), ranks."""
    return (np.zeros((n_t, n_units, n_units + 1), np.int64),
            np.zeros((n_t, n_units * max(n_units - 1, 0) + 1), np.int64),
            np.zeros((n_t, n_pairs, n_pairs), np.int64),
            np.zeros((n_rep // block_size, n_t, n_units, 2)),
            np.full((n_rep, n_t), np.nan),
            np.zeros((n_rep, n_t, n_units), np.int64))


def _pack_keys(score, bits: int, bounds=None) -> list[int]:
    """32-bit descending-order keys of one row of scores: the score quantised against ``bounds``
    (lo, hi) — by default the row's finite range — into the upper ``32 − bits`` bits (larger score
    → smaller or equal value, clamped to [0, L]; missing → L + 1), the unit index in the low
    ``bits``."""
    finite = [v for v in score if math.isfinite(v)]
    if bounds is None:
        bounds = (min(finite), max(finite)) if finite else (math.inf, -math.inf)
    lo, hi = bounds
    missing = 2 ** (32 - bits) - 1
    levels = missing - 1
    span = hi * 0.5 - lo * 0.5  # halves: hi - lo cannot overflow
    scale = levels / span if span > 0.0 else 0.0
    if not math.isfinite(scale):
        scale = 0.0
    keys = []
    for unit, v in enumerate(score):
        if math.isfinite(v):
            x = (hi * 0.5 - v * 0.5) * scale
            q = int(min(x, levels)) if x > 0.0 else 0  # clamped to [0, L] (NaN → L)
            q = levels if math.isnan(x) else q
        else:
            q = missing
        keys.append(q << bits | unit)
    return keys


def _finite_range(z) -> tuple[float, float]:
    finite = [float(v) for v in np.ravel(z) if math.isfinite(v)]
    return (min(finite), max(finite)) if finite else (math.inf, -math.inf)


def montecarlo_scores(zt, linear_variant, tree, design, targets):
    """Readable twin of :func:`engine.kernels.montecarlo.montecarlo_scores`: ``(scores, keys)``."""
    child_ptr, child_idx, param, min_coverage, any_coverage = tree
    node_weight, variant, agg_code, excluded = design
    targets = targets.targets
    n_rep, n_units, n_t = node_weight.shape[0], zt.shape[2], len(targets)
    bits = max(1, (n_units - 1).bit_length())
    scores = np.zeros((n_rep, n_t, n_units))
    keys = np.zeros((n_rep, n_t, n_units), np.uint32)
    for r in range(n_rep):
        target_scores = _mc_replicate_scores(zt, linear_variant, child_ptr, child_idx, param, min_coverage,
                                             any_coverage, node_weight[r], variant[r], agg_code[r], excluded[r],
                                             targets)
        linear = bool(linear_variant[variant[r]]) and not any_coverage and all(c == ARITHMETIC for c in agg_code[r])
        bounds = _finite_range(zt[variant[r]]) if linear else None  # a weighted mean lies within
        for t, score in enumerate(target_scores):
            scores[r, t] = score
            keys[r, t] = _pack_keys([float(v) for v in scores[r, t]], bits, bounds)
    return scores, keys


def montecarlo_accumulate(scores, keys, nominal_rank, pair_units, block_size):
    """Readable twin of :func:`engine.kernels.montecarlo.montecarlo_accumulate` (one lane): ranks
    are computed from the scores alone (the keys are not needed for the result)."""
    n_rep, n_t, n_units = scores.shape
    hist, shift_hist, pair_count, moments, shift_out, ranks = _accumulators(n_rep, n_t, n_units, len(pair_units),
                                                                           block_size)
    for r in range(n_rep):
        for t in range(n_t):
            score = [float(v) for v in scores[r, t]]
            rank_t = _competition_ranks(score)
            ranks[r, t] = rank_t
            shift_out[r, t] = _mc_accumulate(score, rank_t, nominal_rank[t], pair_units, hist[t], shift_hist[t],
                                             pair_count[t], moments[r // block_size, t])
    return hist, shift_hist, pair_count, moments, shift_out, ranks


# ----------------------------------------------------------------------------- bootstrap

def normalise_column(code, x, count, p0, p1, p2, cap):
    """Readable twin of :func:`engine.kernels.normalise.normalise_column`: one column normalised
    with statistics of the weighted sample (units with count > 0 and a finite value, each
    ``count`` times), applied to every unit.  Codes: :mod:`engine.methods` (``MINMAX`` …)."""
    sample = [(float(v), float(c)) for v, c in zip(x, count) if c > 0 and math.isfinite(v)]
    total = sum(c for _, c in sample)
    out = np.full(len(x), np.nan)
    if not sample and code != GOALPOSTS:
        return out
    low = min((v for v, _ in sample), default=math.inf)
    high = max((v for v, _ in sample), default=-math.inf)
    centre = spread = 0.0
    if code == ZSCORE:
        s = 0.0
        for v, c in sample:
            s += c * v
        centre = s / total
        if total > 1 and high > low:
            squares = 0.0
            for v, c in sample:
                squares += c * ((v - centre) * (v - centre))
            spread = math.sqrt(squares / (total - 1.0))
    for i, v in enumerate(float(value) for value in x):
        if not math.isfinite(v):
            continue
        below = sum(c for w, c in sample if w < v)  # weighted number of sample values below v
        average = below + (sum(c for w, c in sample if w == v) + 1.0) / 2.0  # mean position of v's ties
        if code == MINMAX:
            out[i] = p2 if high == low else (v - low) / (high - low) * (p1 - p0) + p0
        elif code == ZSCORE:
            out[i] = p2 if spread == 0.0 else (v - centre) / spread * p1 + p0
        elif code == RANK:
            out[i] = average if p0 == 1.0 else 1.0 + below
        elif code == EXPONENTIAL:
            r = min(average / total, 1.0)  # a unit outside the sample above all of it: R = 1
            out[i] = -p0 * math.log((1.0 - r) + r * math.exp(-100.0 / p0))
        elif code == BORDA:
            out[i] = below
        elif code == PERCENTILE:
            out[i] = p1 if total == 1.0 else below / (total - 1.0) * p0
        elif code == FRACTION_OF_MAX:
            out[i] = p1 if high == 0.0 else v / high * p0
        elif code == DISTANCE_TO_MAX:
            out[i] = p1 if high == low else (1.0 - (high - v) / (high - low)) * p0
        elif code == DISTANCE_TO_TARGET:
            if p0 <= low:
                out[i] = p1
            else:
                d = 1.0 - (p0 - v) / (p0 - low)
                out[i] = (min(d, 1.0) if cap else d) * p1
        else:
            out[i] = min(1.0, max(0.0, (v - p0) / (p1 - p0))) * p2
    return out


def _poisson_weight(u: int, thresholds) -> int:
    """Poisson weight by inversion: the number of CDF thresholds at or below the uniform u."""
    return sum(1 for t in thresholds if u >= t)


def _bootstrap_values(base, divisor, record_unit, record_values, uniform, thresholds, record_scale, derived,
                      numerator, denominator, noise_index, noise_sd, noise_floor, eps):
    """One replicate's undirected values entering normalisation."""
    x = np.array(base, dtype=np.float64, copy=True)
    if len(derived):
        sums = np.zeros((x.shape[0], record_values.shape[1]))
        for i, unit in enumerate(record_unit):
            w = _poisson_weight(int(uniform[i]), thresholds)
            if w and unit >= 0:
                for c in range(record_values.shape[1]):
                    sums[unit, c] += (w * record_scale) * record_values[i, c]
        for d, j in enumerate(derived):
            for unit in range(x.shape[0]):
                num = sums[unit, numerator[d]]
                if denominator[d] >= 0:
                    den = sums[unit, denominator[d]]
                    num = num / den if den > 0 else math.nan
                x[unit, j] = num / divisor[unit, d]
    for k, j in enumerate(noise_index):
        for unit in range(x.shape[0]):
            x[unit, j] = max(x[unit, j] + noise_sd[unit, k] * eps[unit, k], noise_floor[k])
    return x


def bootstrap_blocks(sample, records, noise, norm, tree, design, targets, block_size):
    """Readable twin of :func:`engine.kernels.bootstrap.bootstrap_blocks` (one lane, the same
    grouped arguments): per replicate, values → normalisation fitted on the replicate's sample →
    target scores → ranks → the Monte Carlo accumulators.  Returns ``(hist, shift_hist, pair_count,
    moments, shift_out, ranks, scores)``."""
    base, direction, count = sample.base, sample.direction, sample.count  # its sorted units: a kernel speed-up
    record_unit, record_values, record_uniform, thresholds, record_scale, derived, numerator, denominator, \
        divisor = records
    noise_index, noise_sd, noise_floor, noise_eps = noise
    norm_code, norm_param, norm_cap = norm
    child_ptr, child_idx, param, min_coverage, any_coverage = tree
    node_weight, variant, agg_code, excluded = design
    targets, nominal_rank, pair_units = targets
    n_rep = node_weight.shape[0]
    n_units, n_ind = base.shape
    n_t = len(targets)
    hist, shift_hist, pair_count, moments, shift_out, ranks = _accumulators(n_rep, n_t, n_units, len(pair_units),
                                                                           block_size)
    scores = np.zeros((n_rep, n_t, n_units))
    for r in range(n_rep):
        weights = count[r] if count.shape[1] else np.ones(n_units)
        x = _bootstrap_values(base, divisor, record_unit, record_values, record_uniform[r], thresholds, record_scale,
                              derived, numerator, denominator, noise_index, noise_sd, noise_floor, noise_eps[r])
        v = variant[r]
        z = np.array([normalise_column(norm_code[v, j], x[:, j] * direction[j], weights, norm_param[v, 0, j],
                                       norm_param[v, 1, j], norm_param[v, 2, j], norm_cap[v, j])
                      for j in range(n_ind)]).reshape(n_ind, n_units)
        complete = bool(np.isfinite(z).all())
        target_scores = _mc_replicate_scores(z[None], np.array([complete]), child_ptr, child_idx, param,
                                             min_coverage, any_coverage, node_weight[r], 0, agg_code[r],
                                             excluded[r], targets)
        for t, score in enumerate(target_scores):
            rank_t = _competition_ranks(score)
            ranks[r, t] = rank_t
            scores[r, t] = score
            shift_out[r, t] = _mc_accumulate(score, rank_t, nominal_rank[t], pair_units, hist[t], shift_hist[t],
                                             pair_count[t], moments[r // block_size, t])
    return hist, shift_hist, pair_count, moments, shift_out, ranks, scores


# ----------------------------------------------------------------------------- paired rank change

def rank_change(scores_from, keys_from, scores_to, keys_to, rows_from, rows_to):
    """Readable twin of :func:`engine.kernels.change.rank_change`: each replicate's competition
    ranks in both periods from the scores alone (the keys are not needed for the result); for
    common unit i, ``d = rank_from − rank_to`` counted in column ``d + n − 1`` (n = the larger
    period's unit count), or in the last column when it has no rank in one of the periods."""
    n = max(scores_from.shape[1], scores_to.shape[1])
    out = np.zeros((len(rows_from), 2 * n), np.int64)
    for r in range(scores_from.shape[0]):
        rank_from = _competition_ranks(scores_from[r])
        rank_to = _competition_ranks(scores_to[r])
        for i, (row_from, row_to) in enumerate(zip(rows_from, rows_to, strict=True)):
            a, b = rank_from[row_from], rank_to[row_to]
            if a > 0 and b > 0:
                out[i, a - b + n - 1] += 1
            else:
                out[i, 2 * n - 1] += 1
    return out


# ----------------------------------------------------------------------------- large-n counts

def rank_batch(scores):
    """Readable twin of :func:`engine.kernels.bands.rank_batch`: ``(moments, ranks)`` — each row's
    competition ranks (missing → 0) and Σ score, Σ score² of the ranked units, counted from zero."""
    m, n_t, n_units = scores.shape
    moments = np.zeros((n_t, n_units, 2))
    ranks = np.zeros((m, n_t, n_units), np.int64)
    for r in range(m):
        for t in range(n_t):
            ranks[r, t] = _competition_ranks(scores[r, t])
            for i in range(n_units):
                if ranks[r, t, i] > 0:
                    moments[t, i, 0] += scores[r, t, i]
                    moments[t, i, 1] += scores[r, t, i] * scores[r, t, i]
    return moments, ranks


def count_bands(ranks, nominal_rank, bin_of_rank):
    """Readable twin of :func:`engine.kernels.bands.count_bands`: ``(coarse, rank_sums, extremes,
    shift_hist, shift_sum)`` of ``ranks`` (m, n_targets, n_units), counted from zero."""
    m, n_t, n_units = ranks.shape
    n_bins = int(max(bin_of_rank)) + 1
    coarse = np.zeros((n_t, n_units, n_bins + 1), np.int64)
    rank_sums = np.zeros((n_t, n_units, 2), np.int64)
    extremes = np.zeros((n_t, n_units, 2), np.int64)
    extremes[:, :, 0] = n_units + 1
    shift_hist = np.zeros((n_t, n_units), np.int64)
    shift_sum = np.zeros(n_t, np.int64)
    for r in range(m):
        for t in range(n_t):
            total = 0
            for i in range(n_units):
                k = int(ranks[r, t, i])
                if k == 0:
                    coarse[t, i, n_bins] += 1
                    continue
                coarse[t, i, bin_of_rank[k - 1]] += 1
                rank_sums[t, i] += (k, k * k)
                extremes[t, i] = (min(extremes[t, i, 0], k), max(extremes[t, i, 1], k))
                if nominal_rank[t, i] > 0:
                    total += abs(k - int(nominal_rank[t, i]))
            shift_hist[t, total // n_units] += 1
            shift_sum[t] += total
    return coarse, rank_sums, extremes, shift_hist, shift_sum


def count_windows(ranks, window_start, width):
    """Readable twin of :func:`engine.kernels.bands.count_windows`: ``(fine, above)`` counted from zero."""
    m, n_t, n_units = ranks.shape
    n_q = window_start.shape[2]
    fine = np.zeros((n_t, n_units, n_q, width), np.int64)
    above = np.full((n_t, n_units, n_q), n_units + 1, np.int64)
    for r in range(m):
        for t in range(n_t):
            for i in range(n_units):
                k = int(ranks[r, t, i])
                for q in range(n_q):
                    start = int(window_start[t, i, q])
                    if k > 0 and start <= k < start + width:
                        fine[t, i, q, k - start] += 1
                    elif k >= start + width:
                        above[t, i, q] = min(above[t, i, q], k)
    return fine, above
