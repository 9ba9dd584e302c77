"""Memory a run needs, estimated before any work, against the memory the machine has free.

Monte Carlo and bootstrap runs keep, per target, an integer rank histogram (units × (units + 1))
and a rank-shift histogram (units × (units − 1) + 1 bins) in every lane, in the chunk being merged,
in the run's total and while summarising, so their memory grows with units²; a Sobol run keeps no
histogram: it evaluates a sub-batch of base samples × (groups + 2) replicates at once, sized
from the unit count (:func:`sobol_sub_batch`, at most :data:`SOBOL_EVALUATION_BYTES`), and keeps
per-unit sums of every batch of 512 base samples, so its memory grows with units × groups.
:func:`estimate_bytes` counts these arrays (the model's constants were measured, see
docs/uncertainty.md "Memory"), :func:`check_memory` refuses a run that would not fit with a
:class:`~engine.errors.DataError` that gives the figure, the memory available and what would fit.
``CITYRANK_MEMORY_CHECK=off`` skips the check.
"""

from __future__ import annotations

import os

from ..errors import DataError
from ..kernels.montecarlo import shift_bins
from ..machine import available_bytes, format_bytes  # available_bytes re-exported: its home is engine.machine

__all__ = ["ANALYSES", "available_bytes", "band_bytes", "check_memory", "counts_bytes", "estimate_bytes",
           "local_lanes", "sobol_sample_bytes", "sobol_sub_batch", "SOBOL_EVALUATION_BYTES"]

ANALYSES = ("uncertainty", "bootstrap", "sensitivity")

#: Sets of integer accumulators a run holds besides one per lane: the chunk's lane total, the
#: run's merged state, the final merge and the summaries' work arrays (cumulative counts,
#: probabilities, the acceptability table).
FIXED_SETS = {"uncertainty": 4, "bootstrap": 3, "sensitivity": 0}
#: Replicates whose scores a lane's chain holds at once (engine.analysis.montecarlo.SUB_BATCH) and
#: a bootstrap lane's kernel call (one RNG block).
CHAIN_REPLICATES = {"uncertainty": 256, "bootstrap": 1024}
#: Bytes per (evaluation, unit) of a Sobol batch: scores, keys and ranks of every target, then a
#: float copy of the first target's ranks.
SOBOL_BYTES_PER_TARGET, SOBOL_BYTES_FIXED = 20, 8
#: Base samples per Sobol batch (engine.analysis.sensitivity.BATCH).
SOBOL_BATCH = 512
#: Bytes a Sobol run evaluates at once: a batch's base samples are evaluated in sub-batches of
#: :func:`sobol_sub_batch` (the results do not depend on it).
SOBOL_EVALUATION_BYTES = 1 << 28


def sobol_sample_bytes(n_units: int, n_targets: int = 1, groups: int = 0, second_order: bool = False) -> int:
    """Bytes one Sobol base sample needs while its sub-batch is evaluated: the scores, keys and ranks
    of its (g + 2) (or 2 g + 2) rows, then the per-unit terms of one output (3 + 4 g floats)."""
    rows = 2 * groups + 2 if second_order else groups + 2
    return n_units * (rows * (SOBOL_BYTES_PER_TARGET * n_targets + SOBOL_BYTES_FIXED) + 8 * (3 + 4 * groups))


def sobol_sub_batch(n_units: int, n_targets: int = 1, groups: int = 0, second_order: bool = False) -> int:
    """Base samples a Sobol run evaluates at once (1 .. :data:`SOBOL_BATCH`): as many as fit in
    :data:`SOBOL_EVALUATION_BYTES` (all 512 up to ≈ 1,400 units with 5 groups, 7 at 10⁵ units)."""
    per_sample = sobol_sample_bytes(n_units, n_targets, groups, second_order)
    return max(1, min(SOBOL_BATCH, SOBOL_EVALUATION_BYTES // max(1, per_sample)))


def counts_bytes(n_units: int, n_targets: int = 1, n_pairs: int = 0) -> int:
    """Bytes of one set of integer accumulators: rank histograms, rank-shift histograms and pair
    counts of every target (int64)."""
    return 8 * n_targets * (n_units * (n_units + 1) + shift_bins(n_units) + n_pairs * n_pairs)


def band_bytes(n_units: int, n_targets: int, rank_bins: int) -> tuple[int, int]:
    """Bytes of one set of large-n accumulators (:mod:`engine.analysis.largen`): a pass-1 state
    (coarse counts over ``rank_bins`` bins plus at most 24 decile/top-k/tier edges, rank sums,
    extremes, binned rank shifts) and a pass-2 state (three windows of one bin width per unit).
    Counts are int32 (:func:`engine.analysis.largen.count_type`: a run of fewer than 2³¹
    replicates), the other sums int64."""
    width = -(-n_units // rank_bins)
    pass1 = n_targets * n_units * (4 * (rank_bins + 24 + 1) + 8 * (4 + 1))
    pass2 = 4 * n_targets * n_units * 3 * (width + 1)
    return pass1, pass2


def estimate_bytes(analysis: str, n_units: int, n_targets: int = 1, lanes: int = 1, *, n_pairs: int = 0,
                   groups: int = 0, second_order: bool = False, confidence: bool = False,
                   rank_bins: int | None = None, base_samples: int = SOBOL_BATCH, lane_draws: int = 0) -> int:
    """Memory (bytes) the arrays of a run need at their peak, beyond what the process already holds.

    Parameters
    ----------
    analysis : {"uncertainty", "bootstrap", "sensitivity"}
    n_units, n_targets, n_pairs
        Units ranked, target nodes, units of the pairwise table.
    lanes
        Lanes counting at once in this process (threads; 1 for serial; local Dask workers).
    groups, second_order, base_samples
        Sobol: factor groups g, whether the BA_i matrices are evaluated too (2 g + 2 replicates
        per base sample instead of g + 2), and the base samples N (its per-unit sums are kept per
        batch of 512).
    confidence
        Bootstrap: rank confidence sets (the scores of 2,048 replicates are kept).
    rank_bins
        Uncertainty or bootstrap in large-n mode: its coarse bins (memory O(units × bins), not units²).
    lane_draws
        Bytes of sampling draws a lane holds at once besides its chain (not in large-n mode, whose
        lanes draw as they go), e.g. an exact-mode bootstrap's RNG block of record uniforms (1,024 ×
        records × 4 bytes, and the kernel's slice of them:
        :attr:`engine.analysis.resampling.BootstrapProblem.draw_bytes`); 10⁶ records need 8 GiB per lane.

    Notes
    -----
    Monte Carlo and bootstrap: ``(lanes + FIXED_SETS) · counts_bytes`` plus each lane's chain
    buffers (scores and keys of its replicates in flight, 12 bytes per unit and target).  Sobol:
    :func:`sobol_sub_batch` · :func:`sobol_sample_bytes` (one sub-batch; no histogram) plus the
    per-unit sums of rank and score of every batch, ``2 · 8 (3 + 3 g) · n_units`` each.  Measured
    peaks (docs/uncertainty.md) are 0.6–1 times these figures.
    """
    if analysis not in ANALYSES:
        raise ValueError(f"unknown analysis {analysis!r}: use one of {ANALYSES}")
    lanes = max(1, lanes)
    if analysis == "sensitivity":
        sub = sobol_sub_batch(n_units, n_targets, groups, second_order)
        batches = -(-max(1, base_samples) // SOBOL_BATCH)
        return (sub * sobol_sample_bytes(n_units, n_targets, groups, second_order)
                + batches * 2 * 8 * (3 + 3 * groups) * n_units)
    if analysis in ("uncertainty", "bootstrap") and rank_bins is not None:
        # pass 1: a state per lane, the chunk's, the run's, the summaries' work arrays; pass 2: the
        # pass-1 total, a state per lane, the chunk's and the run's; each lane's chain (≤ 64 MiB);
        # a bootstrap lane also holds its sub-batch's draws (≤ 64 MiB: drawn as needed, see
        # engine.analysis.resampling.run_bootstrap_bands), never an RNG block's (``lane_draws``).
        pass1, pass2 = band_bytes(n_units, n_targets, rank_bins)
        pairs = 8 * n_targets * n_pairs * n_pairs
        draws = 2**26 if analysis == "bootstrap" else 0
        return max((lanes + 3) * (pass1 + pairs), pass1 + (lanes + 2) * pass2) + lanes * (2**26 + draws)
    total = (lanes + FIXED_SETS[analysis]) * counts_bytes(n_units, n_targets, n_pairs) + lanes * lane_draws
    total += lanes * CHAIN_REPLICATES[analysis] * n_targets * n_units * 12
    if analysis == "bootstrap" and confidence:
        total += 2048 * n_targets * n_units * 8
    return total


def local_lanes(backend: str, threads: int | None = None, workers: int | None = None) -> int:
    """Lanes counting at once in this machine's memory: 1 for ``serial``, ``threads`` (default all
    of Numba's) for ``threads``, the local cluster's ``workers`` for ``dask`` (a remote cluster:
    only this process's merges, 1)."""
    if backend == "serial":
        return 1
    if backend == "dask":
        return max(1, workers or 1)
    import numba

    return max(1, threads or numba.get_num_threads())


_size = format_bytes


def check_memory(analysis: str, n_units: int, n_targets: int = 1, lanes: int = 1, **options) -> int:
    """Refuse a run whose :func:`estimate_bytes` exceeds :func:`available_bytes`, before any work.

    Returns the estimate (bytes).  ``options`` are passed to :func:`estimate_bytes`.

    Raises
    ------
    DataError
        The figure needed, the memory available, and the options that would fit (fewer lanes,
        one target, no pairwise table), else large-n mode (uncertainty) or fewer units.
    """
    needed = estimate_bytes(analysis, n_units, n_targets, lanes, **options)
    if os.environ.get("CITYRANK_MEMORY_CHECK", "").strip().lower() in ("off", "0", "no", "false"):
        return needed
    available = available_bytes()
    if available is None or needed <= available:
        return needed
    alternatives = []
    if lanes > 1:
        alternatives.append(("threads=1 (--threads 1)", dict(lanes=1)))
    if n_targets > 1:
        alternatives.append(("only the first target node (targets: [one node])", dict(n_targets=1)))
    if options.get("n_pairs"):
        alternatives.append(("no pairwise table (pairs: [])", dict(n_pairs=0)))
    if analysis == "sensitivity" and options.get("second_order"):
        alternatives.append(("no second-order indices", dict(second_order=False)))
    fits = []
    for text, change in alternatives:
        trial = {"n_targets": n_targets, "lanes": lanes, **options, **change}
        need = estimate_bytes(analysis, n_units, **trial)
        if need <= available:
            fits.append(f"{text} needs about {_size(need)}")
    what = ("histograms of units × units per target and lane" if analysis != "sensitivity"
            else "sub-batches of base samples × (groups + 2) replicates, per-unit sums per batch")
    grows = "units × groups" if analysis == "sensitivity" else "units²"
    if options.get("rank_bins"):
        what, grows = "large-n rank bins per unit, target and lane", "units × rank bins"
    if options.get("lane_draws"):
        what += f", and {_size(options['lane_draws'])} of sampling draws per lane (an RNG block's)"
    fix = ("; ".join(fits) + " and would fit" if fits else
           f"analyse fewer units: memory grows with {grows}" + (
               " (uncertainty's large-n mode needs units × bins: --large-n-above / large_n_above below the "
               "unit count)" if analysis == "uncertainty" and not options.get("rank_bins") else ""))
    raise DataError(f"{analysis} of {n_units:,} units ({n_targets} target(s), {max(1, lanes)} lane(s)) needs about "
                    f"{_size(needed)} of memory ({what}), but only {_size(available)} is available",
                    fix=f"{fix}; CITYRANK_MEMORY_CHECK=off skips this check")
