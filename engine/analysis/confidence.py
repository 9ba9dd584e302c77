"""Confidence sets for ranks (Mogstad, Romano, Shaikh & Wilhelm 2024; R package csranks).

The estimand is the rank of every unit by its *true* value ``θ_j`` (larger is better, ties share the
smallest rank), ``r_j = 1 + #{k ≠ j : θ_k > θ_j}``, not the rank of the noisy estimates ``θ̂``.  The
ranks are bounded by simultaneous confidence statements about the pairwise differences
``θ_a − θ_b``: if ``θ_k`` is significantly larger than ``θ_j`` for ``m`` units ``k``, then
``r_j ≥ 1 + m``; if ``θ_j`` is significantly larger than ``θ_k`` for ``n`` units, ``r_j ≤ p − n``.

Method (csranks ``csdiffmeans``/``csranks_simul``/``csranks_marg``/``cstaubest``, R package
version 1.x, ``R/diffmeans.R`` and ``R/ranks.R``):

* a *family* is a set of ordered pairs ``(a, b)``, each standing for the one-sided hypothesis
  ``H_ab : θ_a ≤ θ_b``, rejected when ``t_ab = (θ̂_a − θ̂_b) / s_ab > c``, with
  ``s_ab² = Σ_aa + Σ_bb − 2 Σ_ab``;
* ``c`` is the ``level`` quantile of ``max_{(a, b) ∈ family} (Z*_a − Z*_b) / s_ab`` over
  ``Z* ~ N(0, Σ)`` (the parametric bootstrap of the max-t statistic);
* with ``stepdown`` the rejected pairs are removed and ``c`` is recomputed over the remaining ones
  until nothing new is rejected (Romano & Wolf 2005), otherwise one step is taken;
* the *marginal* family of unit ``j`` is ``{(j, k), (k, j) : k ≠ j}``, the *simultaneous* family all
  ordered pairs.  A family that holds both directions of every pair makes the one-sided maximum
  the two-sided ``max |t|`` of the first step, exactly as csranks turns its ``symmetric`` type into
  ``lower`` over both directions when ``stepdown = TRUE``;
* the top-k (csranks "τ-best") set is ``{j : simultaneous lower bound of r_j ≤ k}``: unit ``j`` is
  left out only if at least ``k`` units are significantly better.  csranks computes it from the
  one-sided simultaneous family over all ordered pairs, which is the same family as the simultaneous
  two-sided sets, so it is their projection.

Plain vectorised NumPy (no Numba kernel, so no twin in ``engine/kernels/reference.py``).  The
bootstrap statistic is evaluated over tiles of draws × rows of the pair matrix so that memory stays
bounded (a few arrays of ``_TILE_VALUES`` float64 plus ``n_draws × n_units`` statistics) for
any number of units.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from engine import __version__
from engine.display import ResultShape
from engine.errors import DataError, SchemaError, preview
from engine.stages.rank import rank as rank_stage

__all__ = ["ConfidenceSets", "rank_confidence_sets", "rank_confidence_sets_from_bootstrap"]

#: float64 values in one tile (draws × rows × units) of the bootstrap statistic (8 MB; two buffers).
_TILE_VALUES = 1 << 20
#: Relative tolerance of the symmetry and positive-semidefiniteness checks of ``cov``.
_COV_RTOL = 1e-8
#: A unit whose standard error is at most this fraction of the score scale ``max(|θ̂|, se)`` has zero
#: variance (floating-point roundoff of a score that never moves, e.g. 2e-12 on a 0-100 scale).
_ZERO_RTOL = 1e-12
#: A pair whose difference sd ``s_ab`` is at most this fraction of ``sqrt(Σ_aa + Σ_bb)`` (or at most the
#: zero-variance tolerance) has a degenerate difference: the units move in lockstep.
_PAIR_RTOL = 1e-5
#: A degenerate pair is decided by the sign of ``θ̂_a − θ̂_b`` only when the difference exceeds this
#: many times the pair's tolerance (so its t-statistic would exceed 100), otherwise it is a tie.
_DECIDED_T = 100.0


@dataclass(frozen=True, repr=False)
class ConfidenceSets(ResultShape):
    """Confidence sets for the ranks of ``n_units`` units (rank 1 = largest true value).

    Arrays are read-only and indexed like the input units.  The shape of every result
    (:class:`engine.display.ResultShape`): :attr:`units` (one row per unit), :attr:`manifest`,
    ``write(out)``, ``repr``.
    """

    estimates: np.ndarray  #: float64 (n_units,): the point estimates θ̂.
    se: np.ndarray  #: float64 (n_units,): standard errors, ``sqrt(diag(Σ))``.
    rank: np.ndarray  #: int64 (n_units,): competition rank of θ̂ (ties share the smallest rank).
    lower: np.ndarray  #: int64 (n_units,): lower end of each unit's marginal confidence set.
    upper: np.ndarray  #: int64 (n_units,): upper end of each unit's marginal confidence set.
    simultaneous_lower: np.ndarray  #: int64 (n_units,): lower ends of the simultaneous sets.
    simultaneous_upper: np.ndarray  #: int64 (n_units,): upper ends of the simultaneous sets.
    top_k_set: np.ndarray | None  #: bool (n_units,): the confidence set for the top-k units, or None.
    top_k: int | None  #: k of :attr:`top_k_set`.
    #: float64 (n_units,): critical value of each unit's marginal family at its last step.
    marginal_critical_values: np.ndarray
    simultaneous_critical_value: float  #: Critical value of the simultaneous family at its last step.
    #: Steps taken by the simultaneous family (1 without step-down).
    simultaneous_steps: int
    #: bool (n_units,): units treated as having zero variance (standard error within roundoff of 0).
    zero_variance: np.ndarray
    #: Unordered pairs whose difference has zero variance, decided by the sign of the difference (or tied).
    degenerate_pairs: int
    level: float  #: Nominal coverage.
    stepdown: bool  #: Whether the step-down refinement was used.
    n_draws: int  #: Parametric bootstrap draws.
    labels: tuple | None  #: Unit labels, or None (then units are 0..n_units-1).
    #: The settings (level, step-down, draws, top k, seed: the seed drawn when none was given) and versions.
    manifest: dict[str, Any]

    @property
    def n_units(self) -> int:
        """Number of units."""
        return int(self.estimates.shape[0])

    @property
    def units(self) -> pl.DataFrame:
        """One row per unit, in input order (the same table as :meth:`table`)."""
        return self.table()

    def table(self) -> pl.DataFrame:
        """One row per unit, in input order.

        Returns
        -------
        polars.DataFrame
            Columns ``unit``, ``estimate``, ``se``, ``rank``, ``ci_lower``, ``ci_upper`` (marginal
            set), ``simultaneous_lower``, ``simultaneous_upper`` and, when ``top_k`` was given,
            ``in_top_k``.
        """
        unit = pl.Series("unit", list(self.labels)) if self.labels is not None else pl.Series(
            "unit", np.arange(self.n_units, dtype=np.int64))
        columns = [
            unit,
            pl.Series("estimate", self.estimates),
            pl.Series("se", self.se),
            pl.Series("rank", self.rank),
            pl.Series("ci_lower", self.lower),
            pl.Series("ci_upper", self.upper),
            pl.Series("simultaneous_lower", self.simultaneous_lower),
            pl.Series("simultaneous_upper", self.simultaneous_upper),
        ]
        if self.top_k_set is not None:
            columns.append(pl.Series("in_top_k", self.top_k_set))
        return pl.DataFrame(columns)

    def summary(self) -> dict[str, Any]:
        return {"units": self.n_units, "level": self.level, "stepdown": self.stepdown, "draws": self.n_draws,
                **({"top k": self.top_k} if self.top_k is not None else {})}


# ---------------------------------------------------------------------------------------------
# Validation
# ---------------------------------------------------------------------------------------------

def _labels(units: tuple | None, idx: np.ndarray) -> list:
    return [units[i] if units is not None else int(i) for i in np.asarray(idx).ravel()]


def _check_arguments(level, top_k, n_draws, stepdown) -> None:
    if isinstance(level, bool) or not isinstance(level, (int, float, np.floating, np.integer)) \
            or not 0.0 < float(level) < 1.0:
        raise SchemaError(f"level must be a number strictly between 0 and 1, got {level!r}",
                          fix="pass a coverage such as level=0.9 or level=0.95")
    if isinstance(n_draws, bool) or not isinstance(n_draws, (int, np.integer)):
        raise SchemaError(f"n_draws must be an integer, got {n_draws!r}", fix="pass e.g. n_draws=1000")
    minimum = max(10, math.ceil(1.0 / (1.0 - float(level)) - 1e-9))
    if n_draws < minimum:
        raise SchemaError(f"n_draws={n_draws} is too few for a {level} quantile (at least {minimum} needed)",
                          fix="pass n_draws=1000 or more")
    if not isinstance(stepdown, (bool, np.bool_)):
        raise SchemaError(f"stepdown must be True or False, got {stepdown!r}", fix="pass stepdown=True")
    if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, (int, np.integer))):
        raise SchemaError(f"top_k must be an integer or None, got {top_k!r}", fix="pass e.g. top_k=10")


def _check_data(estimates, se, cov, units, top_k):
    """Validate and return (estimates, variances, covariance or None, units tuple or None)."""
    theta = np.asarray(estimates, dtype=np.float64)
    if theta.ndim != 1:
        raise DataError(f"estimates must be one-dimensional (one value per unit), got shape {theta.shape}",
                        fix="pass a vector of n_units point estimates")
    p = theta.shape[0]
    if p < 2:
        raise DataError(f"at least 2 units are needed to rank, got {p}", fix="pass two or more estimates")
    labels: tuple | None = None
    if units is not None:
        labels = tuple(units)
        if len(labels) != p:
            raise DataError(f"units has {len(labels)} labels but estimates has {p} values",
                            fix="pass one label per estimate, in the same order")
        seen, dup = set(), []
        for u in labels:
            if u in seen:
                dup.append(u)
            seen.add(u)
        if dup:
            raise DataError("duplicate unit labels", units=dup, fix="give every unit a distinct label")
    bad = np.flatnonzero(~np.isfinite(theta))
    if bad.size:
        raise DataError(f"estimates must be finite; {bad.size} are NaN or infinite", units=_labels(labels, bad),
                        fix="drop these units or impute their estimates before computing rank confidence sets")
    if top_k is not None and not 1 <= top_k <= p - 1:
        raise SchemaError(f"top_k must be between 1 and n_units - 1 = {p - 1}, got {top_k}",
                          fix=f"pass top_k in 1..{p - 1} (top_k = n_units would always be every unit)")
    if (se is None) == (cov is None):
        raise SchemaError("pass exactly one of se (independent estimates) or cov (a covariance matrix)",
                          fix="give se=<standard errors> or cov=<n_units × n_units covariance>, not both/neither")
    if se is not None:
        sd = np.asarray(se, dtype=np.float64)
        if sd.shape != (p,):
            raise DataError(f"se has shape {sd.shape} but estimates has shape ({p},)",
                            fix="pass one standard error per estimate")
        bad = np.flatnonzero(~np.isfinite(sd) | ~(sd >= 0))
        if bad.size:
            raise DataError(f"standard errors must be finite and >= 0; {bad.size} are not "
                            f"(values {preview(sd[bad].tolist())})", units=_labels(labels, bad),
                            fix="check these units' standard errors (0 for a unit without sampling noise)")
        return theta, sd * sd, None, labels
    sigma = np.asarray(cov, dtype=np.float64)
    if sigma.shape != (p, p):
        raise DataError(f"cov has shape {sigma.shape} but there are {p} estimates",
                        fix=f"pass a ({p}, {p}) covariance matrix of the estimates")
    bad_rows = np.flatnonzero(~np.isfinite(sigma).all(axis=1))
    if bad_rows.size:
        raise DataError(f"cov must be finite; rows of {bad_rows.size} units hold NaN or infinite values",
                        units=_labels(labels, bad_rows), fix="recompute the covariance without missing values")
    scale = float(np.abs(sigma).max())
    asym = np.abs(sigma - sigma.T)
    if asym.max() > _COV_RTOL * scale:
        a, b = np.unravel_index(int(np.argmax(asym)), asym.shape)
        raise DataError(f"cov is not symmetric: cov[{a}, {b}] = {float(sigma[a, b])!r} but cov[{b}, {a}] = "
                        f"{float(sigma[b, a])!r}", units=_labels(labels, [a, b]),
                        fix="pass a symmetric covariance, e.g. (cov + cov.T) / 2")
    sigma = 0.5 * (sigma + sigma.T)
    var = np.diagonal(sigma).copy()
    bad = np.flatnonzero(var < 0)
    if bad.size:
        raise DataError("cov has negative variances on its diagonal", units=_labels(labels, bad),
                        fix="pass a covariance matrix (positive semidefinite)")
    offdiag = sigma.copy()
    np.fill_diagonal(offdiag, 0.0)
    if not offdiag.any():
        return theta, var, None, labels  # diagonal: the same computation as se=sqrt(diag(cov))
    eig_min = float(np.linalg.eigvalsh(sigma)[0])
    if eig_min < -_COV_RTOL * scale:
        raise DataError(f"cov is not positive semidefinite: its smallest eigenvalue is {eig_min:.3g} "
                        f"(largest |entry| {scale:.3g})",
                        fix="pass a covariance estimate such as np.cov(replicates, rowvar=False), or se= for "
                            "independent estimates")
    return theta, var, sigma, labels


def _zero_variance(theta: np.ndarray, var: np.ndarray, sigma: np.ndarray | None):
    """Set the variance (and covariances) of units within roundoff of zero variance to exactly 0.

    Returns ``(var, sigma, zero, tol)``: ``sigma`` is None when no off-diagonal entry remains,
    ``tol = _ZERO_RTOL · max(|θ̂|, se)`` is the absolute tolerance on standard errors.
    """
    tol = _ZERO_RTOL * max(float(np.abs(theta).max()), float(np.sqrt(var.max())))
    zero = np.sqrt(var) <= tol
    if zero.any():
        var = np.where(zero, 0.0, var)
        if sigma is not None:
            sigma = sigma.copy()
            sigma[zero, :] = 0.0
            sigma[:, zero] = 0.0
    if sigma is not None and not (sigma - np.diag(np.diagonal(sigma))).any():
        sigma = None  # diagonal: the same computation as se=sqrt(diag(cov))
    return var, sigma, zero, tol


def _pair_sd(var: np.ndarray, sigma: np.ndarray | None, tol: float):
    """``s_ab = sqrt(Σ_aa + Σ_bb − 2 Σ_ab)`` (1 on the diagonal), the degenerate pairs and their tolerance.

    A pair is degenerate when ``s_ab ≤ δ_ab = max(tol, _PAIR_RTOL · sqrt(Σ_aa + Σ_bb))``: its
    difference has no sampling variance the draws can resolve (both units without variance, or
    units moving in lockstep).  Returns ``(s, degenerate, δ)``; ``s`` is 1 on degenerate pairs.
    """
    total = var[:, None] + var[None, :]
    d2 = total if sigma is None else np.maximum(total - 2.0 * sigma, 0.0)
    delta = np.maximum(tol, _PAIR_RTOL * np.sqrt(total))
    s = np.sqrt(d2)
    degenerate = s <= delta
    np.fill_diagonal(degenerate, False)
    s[degenerate] = 1.0
    np.fill_diagonal(s, 1.0)
    return s, degenerate, delta


# ---------------------------------------------------------------------------------------------
# The step-down computation (canonical unit order)
# ---------------------------------------------------------------------------------------------

def _draws(var: np.ndarray, sigma: np.ndarray | None, n_draws: int, seed) -> np.ndarray:
    """``Z* ~ N(0, Σ)``, shape (n_draws, n_units), from ``default_rng(seed)``.

    With a full Σ the factor is taken of the correlation matrix ``R = D⁻¹ Σ D⁻¹`` (``D = diag(sd)``)
    and ``Z* = (ε Fᵀ) D`` with ``R = F Fᵀ``: the roundoff of the eigendecomposition is then relative
    to each unit's own sd.  Factoring Σ itself leaves an absolute error of about
    ``sqrt(eps · λ_max(Σ))`` in every draw, which swamps units with tiny variance (a unit with sd
    2e-12 beside units with sd 1 got draws with sd 1e-7, and the max-t quantile came out at 10⁴).
    Units with zero variance draw exactly 0.
    """
    eps = np.random.default_rng(seed).standard_normal((n_draws, var.shape[0]))
    sd = np.sqrt(var)
    if sigma is None:
        return eps * sd
    live = sd > 0
    corr = np.zeros_like(sigma)
    corr[np.ix_(live, live)] = sigma[np.ix_(live, live)] / np.outer(sd[live], sd[live])
    np.fill_diagonal(corr, 1.0)
    values, vectors = np.linalg.eigh(corr)
    factor = vectors * np.sqrt(np.clip(values, 0.0, None))  # R = F Fᵀ (clipped roundoff negatives)
    return (eps @ factor.T) * sd


def _stepdown(t: np.ndarray, inv_s: np.ndarray, z: np.ndarray, level: float, stepdown: bool,
              fixed: np.ndarray, known: np.ndarray):
    """Run the simultaneous family and every marginal family to their last step.

    ``t[a, b] = (θ̂_a − θ̂_b) / s_ab`` (antisymmetric), ``inv_s[a, b] = 1 / s_ab`` (0 on the
    diagonal and on fixed pairs), ``z`` the draws.  ``fixed`` (symmetric) marks the pairs decided
    without sampling error, which are in no family; ``known[a, b]``: ``θ_a > θ_b`` for a fixed pair.
    Families share the draws, so a critical value can only fall when its family shrinks, and every
    marginal rejection set contains the simultaneous one restricted to that unit's pairs (the
    marginal sets are never wider).  A family left without pairs keeps a NaN critical value.

    Returns ``(sim_reject, row_reject, col_reject, sim_c, marg_c, sim_steps)`` with
    ``sim_reject[a, b]``: ``θ_a > θ_b`` in the simultaneous family; ``row_reject[j, k]``: ``θ_j > θ_k``
    and ``col_reject[j, k]``: ``θ_k > θ_j`` in the marginal family of ``j``.
    """
    n_draws, p = z.shape
    off = ~np.eye(p, dtype=bool) & ~fixed
    # Penalties: 0 where the ordered pair is still in the family, -inf where it was rejected (or is
    # fixed, or is the diagonal).
    sim_pen = np.where(off, 0.0, -np.inf)
    row_pen = sim_pen.copy()  # row_pen[j, k]: pair (j, k) in j's family
    col_pen = sim_pen.copy()  # col_pen[j, k]: pair (k, j) in j's family
    sim_reject = known.copy()
    row_reject = known.copy()
    col_reject = known.T.copy()
    sim_c = math.nan
    marg_c = np.full(p, np.nan)
    sim_open, sim_steps, first = bool(off.any()), 0, True
    todo = np.flatnonzero(off.any(axis=1))
    while sim_open or todo.size:
        rows = np.arange(p) if sim_open else todo
        in_todo = np.zeros(p, dtype=bool)
        in_todo[todo] = True
        sim_stat = np.full(n_draws, -np.inf)
        marg_stat = np.full((n_draws, p), -np.inf)
        row_block = max(1, min(rows.size, _TILE_VALUES // p))
        draw_block = max(1, _TILE_VALUES // (row_block * p))
        buf_diff = np.empty(draw_block * row_block * p)
        buf_work = np.empty(draw_block * row_block * p)
        for r0 in range(0, rows.size, row_block):
            block = rows[r0:r0 + row_block]
            mine = in_todo[block]
            own = block[mine]
            every = bool(mine.all())
            # Row slices of the pair matrices, taken once per row block (not per draw tile).
            inv_block, sim_block = inv_s[block], sim_pen[block]
            row_own, col_own = row_pen[own], col_pen[own]
            for d0 in range(0, n_draws, draw_block):
                zd = z[d0:d0 + draw_block]
                zb = zd[:, block]
                shape = (zd.shape[0], block.size, p)
                diff = np.subtract(zb[:, :, None], zd[:, None, :], out=buf_diff[:zd.shape[0] * block.size * p]
                                   .reshape(shape))
                diff *= inv_block  # diff[d, i, k] = (Z*_block[i] − Z*_k) / s_{block[i], k}
                work = buf_work[:diff.size].reshape(shape)
                sim_out = sim_stat[d0:d0 + draw_block]
                if first:  # every family holds both directions of all its (non-fixed) pairs: max |t|
                    np.abs(diff, out=work)
                    work += sim_block
                    stat = work.max(axis=2)
                    marg_stat[d0:d0 + draw_block, block] = stat
                    np.maximum(sim_out, stat.max(axis=1), out=sim_out)
                    continue
                if sim_open:
                    np.add(diff, sim_block, out=work)
                    np.maximum(sim_out, work.reshape(shape[0], -1).max(axis=1), out=sim_out)
                if own.size:
                    sub = diff if every else diff[:, mine, :]
                    part = work[:, :own.size, :]
                    np.add(sub, row_own, out=part)
                    stat = part.max(axis=2)
                    np.subtract(col_own, sub, out=part)
                    np.maximum(stat, part.max(axis=2), out=stat)
                    marg_stat[d0:d0 + draw_block, own] = stat
        first = False
        if sim_open:
            sim_steps += 1
            sim_c = float(np.quantile(sim_stat, level))
            new = (sim_pen == 0.0) & (t > sim_c)
            sim_reject |= new
            sim_pen[new] = -np.inf
            sim_open = stepdown and bool(new.any()) and bool((sim_pen == 0.0).any())
        if todo.size:
            c = np.quantile(marg_stat[:, todo], level, axis=0)
            marg_c[todo] = c
            new_row = (row_pen[todo] == 0.0) & (t[todo] > c[:, None])
            new_col = (col_pen[todo] == 0.0) & (-t[todo] > c[:, None])
            row_reject[todo] |= new_row
            col_reject[todo] |= new_col
            row_pen[todo] = np.where(new_row, -np.inf, row_pen[todo])
            col_pen[todo] = np.where(new_col, -np.inf, col_pen[todo])
            changed = new_row.any(axis=1) | new_col.any(axis=1)
            still = ((row_pen[todo] == 0.0).any(axis=1) | (col_pen[todo] == 0.0).any(axis=1))
            todo = todo[changed & still] if stepdown else todo[:0]
    return sim_reject, row_reject, col_reject, sim_c, marg_c, sim_steps


def _competition_rank(theta: np.ndarray) -> np.ndarray:
    """``1 + #{k : θ̂_k > θ̂_j}`` (rank 1 = largest; ties share the smallest rank), by the ranking
    kernel (:func:`engine.stages.rank.rank`); θ̂ is finite (checked on entry)."""
    return rank_stage(np.asarray(theta, np.float64)[:, None])[:, 0].astype(np.int64)


def _frozen(a: np.ndarray) -> np.ndarray:
    a = np.ascontiguousarray(a)
    a.flags.writeable = False
    return a


# ---------------------------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------------------------

def rank_confidence_sets(
    estimates,
    se=None,
    cov=None,
    *,
    level: float = 0.9,
    top_k: int | None = None,
    n_draws: int = 1000,
    seed=0,
    stepdown: bool = True,
    units: Sequence | None = None,
) -> ConfidenceSets:
    """Marginal, simultaneous and top-k confidence sets for the ranks of true values.

    Parameters
    ----------
    estimates : array_like, shape (n_units,)
        Point estimates θ̂ (larger is better; rank 1 = largest true value θ).
    se : array_like, shape (n_units,), optional
        Standard errors of independent estimates (Σ = diag(se²), 0 for a unit without sampling
        noise).  Exactly one of ``se``/``cov``.
    cov : array_like, shape (n_units, n_units), optional
        Covariance matrix Σ of the estimates (symmetric positive semidefinite).  ``cov=diag(se**2)``
        gives exactly the result of ``se=se``.
    level : float, default 0.9
        Nominal coverage, strictly between 0 and 1.
    top_k : int, optional
        If given (1 ≤ top_k ≤ n_units − 1), also compute the confidence set for the identities of
        the top-k units.
    n_draws : int, default 1000
        Parametric bootstrap draws Z* ~ N(0, Σ) (at least ``max(10, 1 / (1 − level))``).
    seed : int, numpy.random.SeedSequence or None, default 0
        Seed of ``numpy.random.default_rng`` (None: fresh entropy, recorded in ``manifest["seed"]``).
        Draws are made with the units sorted by (estimate descending, variance), so permuting the
        units permutes the result exactly when no two units share both estimate and variance.
    stepdown : bool, default True
        Use the step-down refinement (never wider than the single-step sets).
    units : sequence, optional
        Distinct unit labels, used in error messages and in :meth:`ConfidenceSets.table`.

    Returns
    -------
    ConfidenceSets
        Bounds ``lower``/``upper`` (marginal: each covers its unit's true rank with probability
        ≈ ``level``), ``simultaneous_lower``/``simultaneous_upper`` (all cover all true ranks jointly
        with probability ≈ ``level``), ``top_k_set`` (contains every true top-k unit with
        probability ≈ ``level``) and the critical values.

    Raises
    ------
    SchemaError
        ``level``, ``n_draws``, ``stepdown`` or ``top_k`` out of range, or not exactly one of
        ``se``/``cov`` given.
    DataError
        Estimates not a finite vector of at least 2 values; ``se`` not finite and non-negative;
        ``cov`` not finite, symmetric and positive semidefinite; ``units`` of the wrong length or
        with duplicates.

    Notes
    -----
    With ``s_ab² = Σ_aa + Σ_bb − 2Σ_ab`` and ``t_ab = (θ̂_a − θ̂_b) / s_ab``, a family ``F`` of
    ordered pairs has critical value ``c_F = quantile_level(max_{(a,b)∈F} (Z*_a − Z*_b) / s_ab)``
    and rejects ``θ_a ≤ θ_b`` when ``t_ab > c_F`` (i.e. the lower confidence bound
    ``θ̂_a − θ̂_b − s_ab c_F`` of ``θ_a − θ_b`` is positive).  With ``stepdown`` the rejected pairs
    leave ``F`` and ``c_F`` is recomputed until no new pair is rejected.  Then

    ``lower_j = 1 + #{k : θ_k ≤ θ_j rejected}`` and ``upper_j = n_units − #{k : θ_j ≤ θ_k rejected}``

    with the family ``{(j, k), (k, j) : k ≠ j}`` for the marginal set of ``j`` and all ordered pairs
    for the simultaneous sets; the top-k set is ``{j : simultaneous_lower_j ≤ top_k}``.  This is
    csranks' ``csranks(simul=FALSE/TRUE)`` and ``cstaubest(tau=top_k)`` (csdiffmeans with
    ``cstype = "symmetric"`` → one-sided over both directions under step-down; quantiles of type 7,
    NumPy's default ``linear``).  Unlike csranks, one set of draws serves every family and step, so
    the marginal sets are always inside the simultaneous ones and critical values never rise.

    The sets are valid for the ranks of θ under the normal approximation θ̂ − θ ~ N(0, Σ) with Σ
    known; an estimated Σ (e.g. from a bootstrap) makes them approximate.

    *Degenerate variances.*  A standard error at most ``1e-12 · max(|θ̂|, se)`` (the score scale) is
    roundoff of a score that never moves and is set to 0 (:attr:`ConfidenceSets.zero_variance`).
    A pair whose difference sd ``s_ab`` is at most ``δ_ab = max(1e-12 · scale, 1e-5 · sqrt(Σ_aa +
    Σ_bb))`` (two zero-variance units, or units moving in lockstep) has its difference known
    without sampling error: it is in no family (it would make the max-t statistic 0/0 or
    roundoff / roundoff) and is decided by the sign of ``θ̂_a − θ̂_b`` when ``|θ̂_a − θ̂_b| >
    100 δ_ab``, otherwise left undecided (a tie).  Σ is factored as a correlation matrix, so tiny
    variances beside large ones keep their own scale in the draws.

    References
    ----------
    Mogstad, M., Romano, J. P., Shaikh, A. M. and Wilhelm, D. (2024), "Inference for Ranks with
    Applications to Mobility across Neighbourhoods and Academic Achievement across Countries",
    Review of Economic Studies 91(1):476-518, doi:10.1093/restud/rdad006.  R package csranks
    (Wilhelm & Morgen), https://github.com/danielwilhelm/R-CS-ranks.

    Examples
    --------
    >>> import numpy as np
    >>> cs = rank_confidence_sets(np.array([3.0, 2.0, 1.0, 0.99]), se=np.full(4, 0.01), top_k=2)
    >>> cs.lower.tolist(), cs.upper.tolist()
    ([1, 2, 3, 3], [1, 2, 4, 4])
    >>> cs.top_k_set.tolist()
    [True, True, False, False]
    """
    _check_arguments(level, top_k, n_draws, stepdown)
    theta, var, sigma, labels = _check_data(estimates, se, cov, units, top_k)
    level, n_draws, stepdown = float(level), int(n_draws), bool(stepdown)
    if seed is None:  # fresh entropy, recorded in the manifest (the run can be repeated)
        seed = int(np.random.SeedSequence().entropy % (2**63))
    p = theta.shape[0]

    var, sigma, zero, tol = _zero_variance(theta, var, sigma)
    # Canonical order: the result does not depend on the order in which units are passed.
    s, fixed, delta = _pair_sd(var, sigma, tol)
    order = np.lexsort((var, -theta))
    th, vr = theta[order], var[order]
    s, fixed, delta = (m[np.ix_(order, order)] for m in (s, fixed, delta))
    sg = None if sigma is None else sigma[np.ix_(order, order)]
    diff = th[:, None] - th[None, :]
    # A pair without sampling variance is decided by the sign of its difference (a tie when the
    # difference is within _DECIDED_T tolerances: its t-statistic could then be small).
    known = fixed & (diff > _DECIDED_T * delta)
    t = np.where(fixed, 0.0, diff / s)
    np.fill_diagonal(t, 0.0)
    inv_s = np.where(fixed, 0.0, 1.0 / s)
    np.fill_diagonal(inv_s, 0.0)
    z = _draws(vr, sg, n_draws, seed)
    sim_rej, row_rej, col_rej, sim_c, marg_c, sim_steps = _stepdown(t, inv_s, z, level, stepdown, fixed, known)

    def back(canon: np.ndarray) -> np.ndarray:
        out = np.empty_like(canon)
        out[order] = canon
        return out

    sim_lower = back(1 + sim_rej.sum(axis=0))
    sim_upper = back(p - sim_rej.sum(axis=1))
    lower = back(1 + col_rej.sum(axis=1))
    upper = back(p - row_rej.sum(axis=1))
    top = None if top_k is None else _frozen(sim_lower <= top_k)
    return ConfidenceSets(
        estimates=_frozen(theta.copy()),
        se=_frozen(np.sqrt(var)),
        rank=_frozen(_competition_rank(theta)),
        lower=_frozen(lower.astype(np.int64)),
        upper=_frozen(upper.astype(np.int64)),
        simultaneous_lower=_frozen(sim_lower.astype(np.int64)),
        simultaneous_upper=_frozen(sim_upper.astype(np.int64)),
        top_k_set=top,
        top_k=None if top_k is None else int(top_k),
        marginal_critical_values=_frozen(back(marg_c)),
        simultaneous_critical_value=sim_c,
        simultaneous_steps=sim_steps,
        zero_variance=_frozen(zero),
        degenerate_pairs=int(np.triu(fixed).sum()),
        level=level,
        stepdown=stepdown,
        n_draws=n_draws,
        labels=labels,
        manifest={"kind": "rank_confidence_sets", "n_units": int(theta.shape[0]), "level": float(level),
                  "stepdown": bool(stepdown), "n_draws": int(n_draws), "top_k": None if top_k is None else int(top_k),
                  "covariance": cov is not None, "seed": _seed_record(seed),
                  "simultaneous_critical_value": float(sim_c), "simultaneous_steps": int(sim_steps),
                  "degenerate_pairs": int(np.triu(fixed).sum()),
                  "versions": {"cityrank": __version__, "numpy": np.__version__}},
    )


def _seed_record(seed) -> Any:
    """The seed as the manifest records it (an integer, or a SeedSequence's entropy and spawn key)."""
    if isinstance(seed, np.random.SeedSequence):
        return {"entropy": seed.entropy, "spawn_key": list(seed.spawn_key)}
    return int(seed) if isinstance(seed, (int, np.integer)) else repr(seed)


def rank_confidence_sets_from_bootstrap(
    estimates,
    replicates,
    *,
    covariance: bool = True,
    **options,
) -> ConfidenceSets:
    """Rank confidence sets with Σ estimated from bootstrap replicates of the estimates.

    Parameters
    ----------
    estimates : array_like, shape (n_units,)
        Nominal estimates (e.g. the composite scores of the full data).
    replicates : array_like, shape (n_replicates, n_units)
        Bootstrap replicates of the estimates, one row per replicate (e.g. record-level bootstrap
        composite scores).
    covariance : bool, default True
        Use the full sample covariance of the replicates (``ddof=1``); otherwise only their
        standard deviations (independent estimates).
    **options
        Passed to :func:`rank_confidence_sets` (``level``, ``top_k``, ``n_draws``, ``seed``,
        ``stepdown``, ``units``).

    Returns
    -------
    ConfidenceSets

    Raises
    ------
    DataError
        ``replicates`` not a finite (n_replicates ≥ 2, n_units) matrix matching ``estimates``, and
        everything :func:`rank_confidence_sets` raises.
    """
    reps = np.asarray(replicates, dtype=np.float64)
    n_units = np.asarray(estimates).shape[0] if np.ndim(estimates) == 1 else None
    if reps.ndim != 2 or reps.shape[0] < 2 or (n_units is not None and reps.shape[1] != n_units):
        raise DataError(f"replicates must have shape (n_replicates >= 2, {n_units}), got {reps.shape}",
                        fix="pass one row per bootstrap replicate and one column per unit")
    bad = np.flatnonzero(~np.isfinite(reps).all(axis=0))
    if bad.size:
        labels = options.get("units")
        raise DataError(f"bootstrap replicates of {bad.size} units hold NaN or infinite values",
                        units=_labels(None if labels is None else tuple(labels), bad),
                        fix="drop failed replicates (and report them) before estimating the covariance")
    if covariance:
        return rank_confidence_sets(estimates, cov=np.cov(reps, rowvar=False, ddof=1), **options)
    return rank_confidence_sets(estimates, se=reps.std(axis=0, ddof=1), **options)
