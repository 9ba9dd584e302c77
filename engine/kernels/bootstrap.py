"""Bootstrap kernels: per replicate, resampled or perturbed indicator values → normalisation fitted
on the replicate's sample → scores of the target nodes → ranks → the Monte Carlo accumulators.

Three sources of sampling variation, each given per replicate as arrays drawn outside the kernel
(:mod:`engine.analysis.resampling`), so a replicate depends only on (seed, block, position):

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
those of :mod:`engine.kernels.montecarlo` (with a lane axis first).

Normalisation is :func:`engine.kernels.normalise.normalise_column`, the pipeline's own, with the
sample's multiplicities as weights, given the column's units in ascending order when no replicate
changes the column (:func:`~engine.kernels.normalise.normalise_sorted`: the sample's min and max are
its first and last drawn unit, rank-based methods need no sort; the same floats).  The readable twin is
:func:`engine.kernels.reference.bootstrap_blocks`.
"""

from __future__ import annotations

from collections import namedtuple

import numpy as np
from numba import njit, prange

from ._jit import PARALLEL_JIT, jit
from .montecarlo import is_linear, local_weights, score_rank_accumulate, step_buffers
from .normalise import normalise_sorted

__all__ = ["bootstrap_blocks"]

#: Values entering normalisation, their directions, each replicate's unit multiplicities, and per
#: indicator the units with a finite directed value by ascending value (padded with −1) and their number.
Sample = namedtuple("Sample", "base direction count order n_sorted")
#: The record-derived indicators and each replicate's record draws.
Records = namedtuple("Records", "unit values uniform thresholds scale derived numerator denominator divisor")
#: The noisy indicators, their scale and floor, and each replicate's standard normal draws.
Noise = namedtuple("Noise", "index sd floor eps")
#: Each normalisation variant's method code, parameters and cap per indicator.
Normalisation = namedtuple("Normalisation", "code param cap")



@jit
def all_finite(values):
    """Whether every value of a 1-D array is finite (``x − x`` is 0 exactly for a finite x, NaN
    otherwise): one branch-free pass that LLVM vectorises."""
    ok = True
    for i in range(values.shape[0]):
        v = values[i]
        ok &= v - v == 0.0
    return ok


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
def bootstrap_blocks(sample, records, noise, norm, tree, design, targets, block_size, n_lanes, acc, scores_out):
    """Run ``design.node_weight.shape[0]`` bootstrap replicates (whole blocks of ``block_size``) and
    accumulate, blocks dealt to ``n_lanes`` lanes as in the Monte Carlo kernel.

    Arguments are grouped per concept (named tuples; Numba unpacks them before the parallel loop):

    * :class:`Sample` ``base`` (n_units, n_indicators) nominal undirected values entering
      normalisation; ``direction`` (n_indicators,); ``count`` (n, n_units) unit multiplicities, or
      (n, 0) for all-ones; ``order`` (n_indicators, n_units) per indicator the units with a finite
      directed value by ascending value (ties by unit), padded with −1, ``n_sorted`` their number
      (a column no replicate changes is fitted from it: :func:`~engine.kernels.normalise.normalise_sorted`);
    * :class:`Records` ``unit`` (n_records,) unit row of each record (−1 = ignored); ``values``
      (n_records, n_columns); ``uniform`` (n, n_records) uint32 (n_records = 0 without records);
      ``thresholds``; ``scale``; ``derived``/``numerator``/``denominator`` (n_derived,) indicator
      column, numerator column and denominator column (−1 = none) of each record-derived indicator;
      ``divisor`` (n_units, n_derived) its denominator ÷ scale factor (1 without);
    * :class:`Noise` ``index`` (n_noisy,), ``sd`` (n_units, n_noisy), ``floor`` (n_noisy,), ``eps``
      (n, n_units, n_noisy) (n_noisy = 0 without noise);
    * :class:`Normalisation` ``code`` (n_variants, n_indicators), ``param`` (n_variants, 3,
      n_indicators), ``cap`` (n_variants, n_indicators);
    * ``tree``, ``design``, ``targets``, ``acc``: :class:`engine.kernels.montecarlo.Tree`,
      :class:`~engine.kernels.montecarlo.Design`, :class:`~engine.kernels.montecarlo.Targets`,
      :class:`~engine.kernels.montecarlo.Accumulators`, as in the Monte Carlo kernel;
    * ``scores_out`` (n, n_targets, n_units) — every replicate's scores (NaN = missing) — or shape
      (0, …) when not wanted (callers bound n).
    """
    base, direction, count, unit_order, n_sorted = sample
    record_unit, record_values, record_uniform, thresholds, record_scale, derived, numerator, denominator, \
        divisor = records
    noise_index, noise_sd, noise_floor, noise_eps = noise
    norm_code, norm_param, norm_cap = norm
    child_ptr, child_idx, param, min_coverage, any_coverage = tree
    node_weight, variant, agg_code, excluded = design
    target_nodes, nominal_rank, pair_units = targets
    hist, shift_hist, pair_count, moments, shift_out, ranks_out = acc
    n_replicates = node_weight.shape[0]
    n_blocks = n_replicates // block_size
    n_nodes = node_weight.shape[1]
    n_units = base.shape[0]
    n_indicators = base.shape[1]
    ones = np.ones(n_units)
    # Directed columns, transposed once per call (read-only, shared by the lanes): a column that no
    # replicate changes (every column in mode units) is read from here, contiguous, instead of being
    # copied and gathered with a stride of n_indicators per replicate (most of the kernel's memory
    # traffic at 10^5 units).  Only record-derived and noisy columns are recomputed per replicate.
    directed = np.empty((n_indicators, n_units))
    for j in range(n_indicators):
        for i in range(n_units):
            directed[j, i] = base[i, j] * direction[j]
    varies = np.zeros(n_indicators, np.bool_)
    for d in range(derived.shape[0]):
        varies[derived[d]] = True
    for k in range(noise_index.shape[0]):
        varies[noise_index[k]] = True
    any_varies = derived.shape[0] > 0 or noise_index.shape[0] > 0
    for lane in prange(n_lanes):
        x = np.empty((n_units, n_indicators) if any_varies else (0, n_indicators))
        record_sums = np.empty((n_units, record_values.shape[1]))
        column = np.empty(n_units)
        z = np.empty((n_indicators, n_units))
        local = np.empty(n_nodes)
        values, eff, score, key, prefix, order, spare, counts, rank = step_buffers(n_nodes, n_units)
        for b in range(lane, n_blocks, n_lanes):
            for r in range(b * block_size, (b + 1) * block_size):
                weights = count[r] if count.shape[1] > 0 else ones
                if any_varies:
                    replicate_values(base, divisor, record_unit, record_values, record_uniform[r], thresholds,
                                     record_scale, derived, numerator, denominator, noise_index, noise_sd,
                                     noise_floor, noise_eps[r], record_sums, x)
                v = variant[r]
                complete = True
                for j in range(n_indicators):
                    if varies[j]:
                        for i in range(n_units):
                            column[i] = x[i, j] * direction[j]
                        src = column
                        sorted_units = unit_order[j, :0]  # values of this replicate: sorted in the fit if needed
                    else:
                        src = directed[j]
                        sorted_units = unit_order[j, :n_sorted[j]]
                    normalise_sorted(norm_code[v, j], src, weights, sorted_units, norm_param[v, 0, j],
                                     norm_param[v, 1, j], norm_param[v, 2, j], norm_cap[v, j], z[j])
                    complete = complete and all_finite(z[j])
                local_weights(node_weight[r], excluded[r], child_ptr, child_idx, local)
                score_rank_accumulate(z, local, is_linear(complete, any_coverage, agg_code[r]),
                                      complete and not any_coverage, child_ptr, child_idx, agg_code[r], param,
                                      min_coverage, target_nodes, nominal_rank, pair_units, hist[lane],
                                      shift_hist[lane], pair_count[lane], moments[b], shift_out[r], ranks_out, r,
                                      scores_out, values, eff, score, key, prefix, order, spare, counts, rank)
