"""Bootstrap kernels: per replicate, resampled or perturbed indicator values → normalisation fitted
on the replicate's sample → scores of the target nodes → ranks → the Monte Carlo accumulators.

Three sources of sampling variation, each given per replicate as arrays drawn outside the kernel
(:mod:`engine.analysis.bootstrap`), so a replicate depends only on (seed, block, position):

* **records** (Poisson bootstrap): ``record_uniform[r, i]`` is a uniform 32-bit integer turned
  into the Poisson weight of record i by inversion (``weight = #{k : u ≥ thresholds[k]}``, with
  ``thresholds[k] = ⌊P(W ≤ k)·2³²⌋``).  The record-derived indicators are recomputed per unit
  as weighted sums ``Σ_i w_i v_i`` over the unit's records (a weighted bincount): a count is the
  sum of a 0/1 column, a mean the ratio of two sums (no weight → missing), each scaled by
  ``record_scale`` (1/λ for Poisson(λ) weights) and divided by the indicator's denominator;
* **units**: ``count[r, unit]`` is the unit's multiplicity in the resample (0 = not drawn); every
  normalisation statistic (min, max, mean, sd, the ranks of rank-based methods) is fitted on the
  resampled units with these multiplicities and applied to *all* original units, which are
  then ranked among themselves;
* **noise**: ``value + sd · ε`` with ``noise_eps[r, unit, k]`` standard normal, truncated below at
  ``noise_floor[k]`` (0 for indicators that cannot be negative, −∞ otherwise).

Weights, aggregation methods, normalisation variants and the excluded indicator can vary per
replicate as in the Monte Carlo kernel (combined studies).  Accumulators and their meanings are
those of :func:`engine.kernels.montecarlo.montecarlo_blocks`.

The readable twins are :func:`engine.kernels.reference.normalise_column` and
:func:`engine.kernels.reference.bootstrap_blocks`.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from ._jit import PARALLEL_JIT, jit
from .montecarlo import is_linear, local_weights, score_rank_accumulate, step_buffers

__all__ = ["normalise_column", "bootstrap_blocks"]

#: Normalisation codes, in the order of :data:`engine.stages.normalise.NORMALISERS`.
MINMAX, ZSCORE, RANK, BORDA, PERCENTILE, FRACTION_OF_MAX, DISTANCE_TO_MAX, DISTANCE_TO_TARGET, GOALPOSTS = range(9)


@jit
def normalise_column(code, x, count, p0, p1, p2, cap, out):
    """Normalise one directed indicator column ``x`` (n_units,) into ``out``, every statistic
    fitted on the *sample*: the units with ``count > 0`` and a finite value, each counted
    ``count`` times.  Every unit with a finite value gets a normalised value (units outside the
    sample included; they may fall outside the method's range); non-finite → NaN.

    With ``count`` all 1 this is exactly the stage's kernel of the same method (same float
    operations in the same order):

    * minmax ``(v − min)/(max − min)·(p1 − p0) + p0`` (constant → ``p2``);
    * zscore ``(v − m)/s·p1 + p0`` with m = Σc·x/Σc, s² = Σc·(x − m)²/(Σc − 1) (constant or Σc < 2 → ``p2``);
    * rank ``1 + Σ{c_k : x_k < v}`` (ascending competition rank against the sample); borda = rank − 1;
    * percentile ``(rank − 1)/(Σc − 1)·p0`` (Σc = 1 → ``p1``);
    * fraction_of_max ``v/max·p0`` (max = 0 → ``p1``); distance_to_max ``(1 − (max − v)/(max − min))·p0``
      (constant → ``p1``); distance_to_target(target p0, scale p1, ``cap``); goalposts (p0, p1, scale p2).

    A sample without any finite value gives NaN everywhere.
    """
    n = x.shape[0]
    total = 0.0
    low = np.inf
    high = -np.inf
    for i in range(n):
        if count[i] > 0.0 and np.isfinite(x[i]):
            total += count[i]
            if x[i] < low:
                low = x[i]
            if x[i] > high:
                high = x[i]
    if total == 0.0 and code != GOALPOSTS:
        out[:] = np.nan
        return out
    centre = 0.0
    spread = 0.0
    ordered = np.empty(0, np.float64)
    below = np.zeros(1, np.float64)
    if code == ZSCORE:
        s = 0.0
        for i in range(n):
            if count[i] > 0.0 and np.isfinite(x[i]):
                s += count[i] * x[i]
        centre = s / total
        if total > 1.0 and high > low:
            squares = 0.0
            for i in range(n):
                if count[i] > 0.0 and np.isfinite(x[i]):
                    d = x[i] - centre
                    squares += count[i] * (d * d)
            spread = np.sqrt(squares / (total - 1.0))
    if code == RANK or code == BORDA or code == PERCENTILE:
        m = 0
        for i in range(n):
            if count[i] > 0.0 and np.isfinite(x[i]):
                m += 1
        values = np.empty(m, np.float64)
        weights = np.empty(m, np.float64)
        m = 0
        for i in range(n):
            if count[i] > 0.0 and np.isfinite(x[i]):
                values[m] = x[i]
                weights[m] = count[i]
                m += 1
        order = np.argsort(values, kind="mergesort")
        ordered = values[order]
        below = np.zeros(m + 1, np.float64)  # below[p] = Σ weights of the p smallest sample values
        for p in range(m):
            below[p + 1] = below[p] + weights[order[p]]
    for i in range(n):
        v = x[i]
        if not np.isfinite(v):
            out[i] = np.nan
        elif code == MINMAX:
            out[i] = p2 if high == low else (v - low) / (high - low) * (p1 - p0) + p0
        elif code == ZSCORE:
            out[i] = p2 if spread == 0.0 else (v - centre) / spread * p1 + p0
        elif code == RANK or code == BORDA or code == PERCENTILE:
            position = 1.0 + below[np.searchsorted(ordered, v)]  # 1 + Σ weights of sample values < v
            if code == RANK:
                out[i] = position
            elif code == BORDA:
                out[i] = position - 1.0
            elif total == 1.0:
                out[i] = p1
            else:
                out[i] = (position - 1.0) / (total - 1.0) * p0
        elif code == FRACTION_OF_MAX:
            out[i] = p1 if high == 0.0 else v / high * p0
        elif code == DISTANCE_TO_MAX:
            out[i] = p1 if high == low else (1.0 - (high - v) / (high - low)) * p0
        elif code == DISTANCE_TO_TARGET:
            if p0 <= low:
                out[i] = p1
            else:
                d = 1.0 - (p0 - v) / (p0 - low)
                if cap and d > 1.0:
                    d = 1.0
                out[i] = d * p1
        else:  # GOALPOSTS
            d = (v - p0) / (p1 - p0)
            out[i] = min(1.0, max(0.0, d)) * p2
    return out


@jit
def _derive_records(record_unit, record_values, uniform, thresholds, record_scale, acc):
    """acc[unit, c] = Σ_i w_i · record_values[i, c] over the unit's records, w_i the Poisson weight
    of record i by inversion of its uniform 32-bit integer (times ``record_scale``)."""
    acc[:, :] = 0.0
    n_thresholds = thresholds.shape[0]
    for i in range(record_unit.shape[0]):
        u = uniform[i]
        w = 0
        while w < n_thresholds and u >= thresholds[w]:
            w += 1
        unit = record_unit[i]
        if w == 0 or unit < 0:
            continue
        weight = w * record_scale
        for c in range(record_values.shape[1]):
            acc[unit, c] += weight * record_values[i, c]


@jit
def replicate_values(base, divisor, record_unit, record_values, uniform_row, thresholds, record_scale,
                     derived, numerator, denominator, noise_index, noise_sd, noise_floor, eps_row, acc, x):
    """The replicate's undirected pre-normalisation values ``x`` (n_units, n_indicators): the
    nominal ones, with record-derived columns recomputed (when ``derived`` is not empty) and noise
    added (when ``noise_index`` is not empty)."""
    x[:, :] = base
    if derived.shape[0] > 0:
        _derive_records(record_unit, record_values, uniform_row, thresholds, record_scale, acc)
        for d in range(derived.shape[0]):
            j = derived[d]
            for unit in range(x.shape[0]):
                num = acc[unit, numerator[d]]
                if denominator[d] >= 0:
                    den = acc[unit, denominator[d]]
                    v = num / den if den > 0.0 else np.nan
                else:
                    v = num
                x[unit, j] = v / divisor[unit, d]
    if noise_index.shape[0] > 0:
        for k in range(noise_index.shape[0]):
            j = noise_index[k]
            for unit in range(x.shape[0]):
                v = x[unit, j] + noise_sd[unit, k] * eps_row[unit, k]
                x[unit, j] = noise_floor[k] if v < noise_floor[k] else v  # NaN (missing) stays NaN


@njit(**PARALLEL_JIT)
def bootstrap_blocks(base, direction, divisor, count, record_unit, record_values, record_uniform, thresholds,
                     record_scale, derived, numerator, denominator, noise_index, noise_sd, noise_floor, noise_eps,
                     norm_code, norm_param, norm_cap, child_ptr, child_idx, param, min_coverage, any_coverage,
                     node_weight, variant, agg_code, excluded, targets, nominal_rank, pair_units, block_size,
                     n_lanes, hist, shift_hist, pair_count, moments, shift_out, ranks_out, scores_out):
    """Run ``node_weight.shape[0]`` bootstrap replicates (whole blocks of ``block_size``) and
    accumulate, blocks dealt to ``n_lanes`` lanes as in the Monte Carlo kernel.

    Shapes: ``base`` (n_units, n_indicators) nominal undirected values entering normalisation;
    ``direction`` (n_indicators,); ``count`` (n, n_units), or (n, 0) for all-ones;
    ``record_unit`` (n_records,) unit row of each record (−1 = ignored); ``record_values``
    (n_records, n_columns); ``record_uniform`` (n, n_records) uint32 (n_records = 0 without records);
    ``derived``/``numerator``/``denominator`` (n_derived,) indicator column, numerator column and
    denominator column (−1 = none) of each record-derived indicator; ``divisor`` (n_units,
    n_derived) its denominator ÷ scale factor (1 without); ``noise_index`` (n_noisy,),
    ``noise_sd`` (n_units, n_noisy), ``noise_floor`` (n_noisy,), ``noise_eps`` (n, n_units,
    n_noisy) (n_noisy = 0 without noise); ``norm_code`` (n_variants, n_indicators), ``norm_param`` (n_variants, 3,
    n_indicators), ``norm_cap`` (n_variants, n_indicators); the rest as the Monte Carlo kernel, plus
    ``scores_out`` (n, n_targets, n_units) — every replicate's scores (NaN = missing) — or shape
    (0, …) when not wanted (callers bound n).
    """
    n_replicates = node_weight.shape[0]
    n_blocks = n_replicates // block_size
    n_nodes = node_weight.shape[1]
    n_units = base.shape[0]
    n_indicators = base.shape[1]
    ones = np.ones(n_units)
    for lane in prange(n_lanes):
        x = np.empty((n_units, n_indicators))
        acc = np.empty((n_units, record_values.shape[1]))
        column = np.empty(n_units)
        z = np.empty((n_indicators, n_units))
        local = np.empty(n_nodes)
        values, eff, score, key, prefix, order, spare, counts, rank = step_buffers(n_nodes, n_units)
        for b in range(lane, n_blocks, n_lanes):
            for r in range(b * block_size, (b + 1) * block_size):
                weights = count[r] if count.shape[1] > 0 else ones
                replicate_values(base, divisor, record_unit, record_values, record_uniform[r], thresholds,
                                 record_scale, derived, numerator, denominator, noise_index, noise_sd, noise_floor,
                                 noise_eps[r], acc, x)
                v = variant[r]
                complete = True
                for j in range(n_indicators):
                    for i in range(n_units):
                        column[i] = x[i, j] * direction[j]
                    normalise_column(norm_code[v, j], column, weights, norm_param[v, 0, j], norm_param[v, 1, j],
                                     norm_param[v, 2, j], norm_cap[v, j], z[j])
                    for i in range(n_units):
                        if not np.isfinite(z[j, i]):
                            complete = False
                local_weights(node_weight[r], excluded[r], child_ptr, child_idx, local)
                score_rank_accumulate(z, local, is_linear(complete, any_coverage, agg_code[r]),
                                      complete and not any_coverage, child_ptr, child_idx, agg_code[r], param,
                                      min_coverage, targets, nominal_rank, pair_units, hist[lane], shift_hist[lane],
                                      pair_count[lane], moments[b], shift_out[r], ranks_out, r, scores_out, values,
                                      eff, score, key, prefix, order, spare, counts, rank)
