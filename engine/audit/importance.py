"""Audit section "importance": nominal and effective weights next to each node's importance in the index
(see docs/audit.md).

The importance of a node ``x`` (an indicator's normalised values, an aggregate's scores) in an output
``y`` (the index, or the node's parent) is the correlation ratio, the first-order effect
``η² = Var(E[y | x]) / Var(y)`` (Paruolo, Saisana & Saltelli 2013; Becker et al. 2017).
``E[y | x]`` is estimated by a penalised cubic regression spline (a P-spline, Eilers & Marx 1996):
a cubic B-spline basis with ``segments`` equal segments on the rank scale of ``x`` (its empirical
distribution function, which leaves η² unchanged: η² is invariant under any strictly increasing
transformation of ``x``, and every segment then holds about the same number of units), a
second-order difference penalty, and the penalty chosen by generalised cross-validation on a fixed
grid.  Everything is a function of a few small matrices (``B'CB``, ``B'Cy``), so a bootstrap
replicate (units drawn with replacement, counts ``C``) costs a few (m × m) operations, m =
segments + 3.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl

from ..errors import SchemaError
from ..pipeline import ScoreResult
from .result import flag
from .whatif import as_result

__all__ = ["OPTIONS", "SmootherSet", "check_option", "SplineSmoother", "correlation_ratio", "importance", "section"]

OPTIONS: dict[str, Any] = {
    "bootstrap": 200,  #: Bootstrap replicates of the interval (0: no interval).
    "seed": 0,  #: Seed of the bootstrap draws.
    "interval": 0.9,  #: Coverage of the percentile interval.
    "segments": 12,  #: Equal segments of the spline (on the rank scale of x).
    "min_units": 20,  #: Fewest units with both values for a smoother.
    "importance_ratio": 2.0,  #: Flag a share of importance in the parent outside [weight / r, weight × r].
}

#: log10 of the penalty grid, relative to trace(B'B) / trace(D'D).
LOG_PENALTY = np.arange(-6.0, 6.01, 0.25)


class SplineSmoother:
    """P-spline regression of outputs on one input ``x`` (1-d, finite), set up once for ``x``.

    :meth:`select` fits an output on the sample (penalty by GCV) and returns η² = Var(fitted) /
    Var(y) and the penalty (:class:`SmootherSet`: several inputs at once); :meth:`replicate` refits
    with a given penalty under unit multiplicities (bootstrap counts).  The penalty chosen on the
    sample is kept in the replicates: GCV on a bootstrap sample (duplicated units) undersmooths and
    would bias η² upwards."""

    def __init__(self, x: np.ndarray, segments: int = 12) -> None:
        # SciPy here, not at import: `import engine` (every command) loads this package eagerly
        from scipy import sparse
        from scipy.interpolate import BSpline
        from scipy.stats import rankdata

        n = len(x)
        u = (rankdata(x) - 1.0) / max(n - 1, 1)  # empirical distribution function on [0, 1]
        h = 1.0 / segments
        knots = np.linspace(-3 * h, 1 + 3 * h, segments + 7)
        self.basis = BSpline.design_matrix(u, knots, 3, extrapolate=True).toarray()  # (n, m)
        m = self.basis.shape[1]
        difference = np.diff(np.eye(m), 2, axis=0)
        self.penalty = difference.T @ difference
        # B_i B_i' has 16 non-zeros (4 per row of a cubic basis): B'CB = outer' counts, a sparse product
        self.outer_t = sparse.csr_matrix((self.basis[:, :, None] * self.basis[:, None, :]).reshape(n, m * m).T)
        gram = self.basis.T @ self.basis
        self.scale = np.trace(gram) / np.trace(self.penalty)
        # Demmler-Reinsch against M = B'B + scale P, which is positive definite as soon as x has two distinct
        # values (a coefficient vector unpenalised by P is a line, and a line zero at two points is zero):
        # M = LL', L^-1 B'B L^-T = V diag(d) V' with d in [0, 1].  For the penalty λ scale,
        # B'B + λ scale P = L V diag(d + λ(1 - d)) V' L', so with b = V'L^-1 B'y and every λ at once:
        # a'B'y = Σ b²/(d + λ(1-d)), a'B'Ba = Σ b² d/(d + λ(1-d))², edf = Σ d/(d + λ(1-d)).  (Decomposing
        # B'B itself needs a ridge where x has few distinct values: B'B is then singular and the
        # unpenalised directions drown in rounding, e.g. a binary x; M needs none.)
        inv = np.linalg.inv(np.linalg.cholesky(gram + self.scale * self.penalty))  # L^-1
        d, vectors = np.linalg.eigh(inv @ gram @ inv.T)
        d = np.clip(d, 0.0, 1.0)
        self._project = vectors.T @ inv  # b = project @ B'y
        lam = 10.0 ** LOG_PENALTY[:, None]
        denominator = d[None, :] + lam * (1.0 - d[None, :])  # (grid, m), >= min(1, λ) > 0
        self._basis_project = self.basis @ self._project.T  # y @ this = b
        self._both = np.concatenate([1.0 / denominator, d / denominator**2]).T  # (m, 2 grid): a'B'y and a'B'Ba
        self._gcv_scale = n / (n - (d / denominator).sum(axis=1)) ** 2  # GCV = n RSS / (n - edf)²

    def select(self, y: np.ndarray) -> tuple[float, float]:
        """η² of the output ``y`` (1-d) on the sample and the penalty GCV chose."""
        eta, best = SmootherSet([self]).eta(y)
        return float(eta[0]), float(self.scale * 10.0 ** LOG_PENALTY[best[0]])

    def replicate(self, y: np.ndarray, counts: np.ndarray, penalty: float) -> np.ndarray:
        """η² of the 1-d output ``y`` under each row of ``counts`` (r, n), penalty fixed."""
        y = y - y.mean()  # η² does not change; the sums of squares below lose less to rounding
        m = self.basis.shape[1]
        n = counts.sum(axis=1)
        gram = np.asarray(self.outer_t @ counts.T).T.reshape(-1, m, m)  # B'CB
        cy = counts * y
        coef = np.linalg.solve(gram + penalty * self.penalty, (cy @ self.basis)[:, :, None])[:, :, 0]
        fitted_sq = np.einsum("rm,rmk,rk->r", coef, gram, coef)
        yy = cy @ y
        mean = cy.sum(axis=1) / n
        return _ratio(fitted_sq - n * mean**2, yy - n * mean**2, yy)


class SmootherSet:
    """:meth:`SplineSmoother.eta` of several inputs observed on the same units, for one output at a
    time, in a few array operations (the optimiser's inner loop)."""

    def __init__(self, smoothers: list[SplineSmoother]) -> None:
        self.size = len(smoothers)
        self.m = smoothers[0].basis.shape[1]
        self.project = np.concatenate([s._basis_project for s in smoothers], axis=1)  # (n, k m)
        self.both = np.stack([s._both for s in smoothers])  # (k, m, 2 grid)
        self.gcv_scale = np.stack([s._gcv_scale for s in smoothers])  # (k, grid)

    def eta(self, y: np.ndarray, penalty: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """η² of every input for the output ``y`` and the penalty used (grid positions): chosen by GCV,
        or the given ones (a fixed penalty makes η² a smooth function of ``y``)."""
        grid = len(LOG_PENALTY)
        size = float(np.max(np.abs(y))) if y.size else 0.0
        y = y - y.mean()  # the fit keeps the mean (constants are not penalised): Var(fitted) = Σ fitted² / n
        b2 = ((y @ self.project) ** 2).reshape(self.size, self.m)
        both = np.einsum("km,kmg->kg", b2, self.both)
        explained, fitted_sq = both[:, :grid], both[:, grid:]  # a'B'y and a'B'Ba = Σ fitted², per penalty
        total = float(y @ y)
        if penalty is None:
            penalty = np.argmin((total - 2 * explained + fitted_sq) * self.gcv_scale, axis=1)  # RSS, GCV
        if not total > 1e-24 * y.shape[0] * size**2:  # constant output (up to rounding): η² undefined
            return np.full(self.size, np.nan), penalty
        return np.clip(fitted_sq[np.arange(self.size), penalty] / total, 0.0, 1.0), penalty


def _ratio(fitted_var: np.ndarray, total: np.ndarray, yy: np.ndarray) -> np.ndarray:
    """Var(fitted) / Var(y) in [0, 1]; NaN where y has no variance."""
    with np.errstate(invalid="ignore", divide="ignore"):
        eta = np.clip(fitted_var / total, 0.0, 1.0)
    return np.where(total > 1e-13 * yy, eta, np.nan)


def correlation_ratio(x: np.ndarray, y: np.ndarray, *, segments: int = 12) -> float:
    """η² = Var(E[y | x]) / Var(y) of two 1-d arrays (rows where either is missing are left out),
    estimated with the P-spline of :class:`SplineSmoother`."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    valid = np.isfinite(x) & np.isfinite(y)
    return SplineSmoother(x[valid], segments).select(y[valid])[0]


def _bootstrap_counts(n: int, replicates: int, seed: int) -> np.ndarray:
    """Multiplicities (replicates, n) of n units drawn with replacement."""
    rng = np.random.default_rng(np.random.SeedSequence(seed))
    return rng.multinomial(n, np.full(n, 1.0 / n), size=replicates).astype(float)


def check_option(name: str, value: Any, ok: bool, fix: str) -> None:
    if not ok:
        raise SchemaError(f"audit option {name} = {value!r} is invalid", node=None, fix=fix)


def check(options: dict[str, Any]) -> None:
    """Refuse bad smoother/bootstrap settings before any work."""
    b, s, i, m = options["bootstrap"], options["segments"], options["interval"], options["min_units"]
    check_option("bootstrap", b, isinstance(b, int) and 0 <= b <= 100_000,
                 "give a whole number of replicates, 0-100000")
    check_option("segments", s, isinstance(s, int) and 3 <= s <= 200, "give a whole number of segments, 3-200")
    check_option("interval", i, isinstance(i, float | int) and 0 < i < 1, "give a coverage between 0 and 1, e.g. 0.9")
    check_option("min_units", m, isinstance(m, int) and m >= 5, "give a whole number >= 5")
    r = options["importance_ratio"]
    check_option("importance_ratio", r, isinstance(r, float | int) and r > 1, "give a ratio > 1, e.g. 2")


def _pearson_r2(x: np.ndarray, y: np.ndarray) -> float:
    if np.ptp(x) == 0 or np.ptp(y) == 0:
        return float("nan")
    return float(np.corrcoef(x, y)[0, 1] ** 2)


def importance(result: Any, data: Any = None, *, bootstrap: int = 200, seed: int = 0, interval: float = 0.9,
               segments: int = 12, min_units: int = 20, importance_ratio: float = 2.0
               ) -> tuple[pl.DataFrame, list[dict[str, Any]]]:
    """Weights and importance of every node (all but the index).

    Parameters
    ----------
    result
        A :class:`~engine.ScoreResult`, or a framework scored on ``data``.
    bootstrap, seed, interval
        Replicates, seed and coverage of the percentile bootstrap interval of the importance in the
        index (units drawn with replacement, the same draws for every node).
    segments, min_units
        Spline segments; fewest units with both values for a smoother (below: no estimate, a flag).
    importance_ratio
        A node's share of importance among its siblings outside [local weight / ratio, local weight ×
        ratio] is flagged.

    Returns
    -------
    table, flags
        ``table``: ``node``, ``kind``, ``parent``, ``level`` (depth), ``weight`` (as resolved,
        relative to siblings), ``local`` (share among siblings), ``global`` (effective weight in the
        index: product of the shares), ``importance`` (η² in the index), ``importance_low`` /
        ``importance_high`` (bootstrap interval), ``pearson_r2`` (in the index), ``importance_parent``
        (η² in the parent), ``share_parent`` (``importance_parent`` over its siblings' sum: compare
        with ``local``), ``units`` (used), ``note`` (why a value is missing).  ``flags``: rows of
        :func:`engine.audit.flag`.

    Raises
    ------
    SchemaError
        Invalid options (before any work).
    """
    options = {"bootstrap": bootstrap, "seed": seed, "interval": interval, "segments": segments,
               "min_units": min_units, "importance_ratio": importance_ratio}
    check(options)
    result = as_result(result, data)
    fw, stages = result.framework, result.stages
    position = {n: k for k, n in enumerate(fw.node_ids)}
    values = stages.scores.copy()
    values[:, : len(fw.indicators)] = stages.normalised  # indicators as normalised, aggregates as scored
    index = values[:, -1]
    counts = _bootstrap_counts(len(index), bootstrap, seed)
    indicators = {i.id for i in fw.indicators}
    weights = result.effective_weights
    rows, flags = [], []
    tail = (1.0 - interval) / 2.0
    for row in weights.iter_rows(named=True):
        node = row["node"]
        x = values[:, position[node]]
        parent = values[:, position[row["parent"]]]
        valid = np.isfinite(x) & np.isfinite(index)
        est = {"importance": None, "importance_low": None, "importance_high": None, "pearson_r2": None,
               "importance_parent": None, "note": None}
        note = _why_not(x, index, valid, min_units)
        if note is None:
            smoother = SplineSmoother(x[valid], segments)
            est["importance"], penalty = smoother.select(index[valid])
            if bootstrap:
                eta = smoother.replicate(index[valid], counts[:, valid], penalty)
                finite = eta[np.isfinite(eta)]
                if finite.size:
                    est["importance_low"], est["importance_high"] = (float(v) for v in np.quantile(
                        finite, [tail, 1.0 - tail]))
            est["pearson_r2"] = _pearson_r2(x[valid], index[valid])
            both = np.isfinite(x) & np.isfinite(parent)
            if row["parent"] == fw.root.id:
                est["importance_parent"] = est["importance"]
            elif _why_not(x, parent, both, min_units) is None:
                est["importance_parent"] = smoother.select(parent[valid])[0] if (both == valid).all() \
                    else correlation_ratio(x[both], parent[both], segments=segments)
        else:
            est["note"] = note
            flags.append(flag("importance", "warning", f"no importance: {note}", node=node))
        rows.append({"node": node, "kind": "indicator" if node in indicators else "aggregate", "parent": row["parent"],
                     "level": fw.depth(node), "weight": row["weight"], "local": row["local"], "global": row["global"],
                     **est, "units": int(valid.sum())})
    schema = {"node": pl.String, "kind": pl.String, "parent": pl.String, "level": pl.Int64, "weight": pl.Float64,
              "local": pl.Float64, "global": pl.Float64, "importance": pl.Float64, "importance_low": pl.Float64,
              "importance_high": pl.Float64, "pearson_r2": pl.Float64, "importance_parent": pl.Float64,
              "note": pl.String, "units": pl.Int64}
    table = pl.DataFrame(rows, schema=schema, orient="row")
    table = table.with_columns(share_parent=pl.col("importance_parent")
                               / pl.col("importance_parent").sum().over("parent")).select(
        *[c for c in schema if c not in ("note", "units")], "share_parent", "units", "note")
    flags.extend(_imbalance_flags(table, importance_ratio))
    return table, flags


def _why_not(x: np.ndarray, y: np.ndarray, valid: np.ndarray, min_units: int) -> str | None:
    """Why η² of y on x cannot be estimated (None: it can)."""
    n = int(valid.sum())
    if n < min_units:
        return f"{n} unit(s) with a value, fewer than the {min_units} a smoother needs (option min_units)"
    if np.ptp(x[valid]) == 0:
        return "the values are constant (the same for every unit), so they explain nothing"
    if np.ptp(y[valid]) == 0:
        return "the output is constant (the same for every unit)"
    return None


def _imbalance_flags(table: pl.DataFrame, ratio: float) -> list[dict[str, Any]]:
    flags = []
    for row in table.drop_nulls("share_parent").iter_rows(named=True):
        if row["local"] > 0 and not (row["local"] / ratio <= row["share_parent"] <= row["local"] * ratio):
            more = row["share_parent"] > row["local"]
            flags.append(flag("importance", "warning" if not more and row["share_parent"] < 0.05 else "note",
                              f"carries {row['share_parent']:.0%} of the importance among the components of "
                              f"{row['parent']!r} against a weight share of {row['local']:.0%} "
                              f"({'more' if more else 'less'} than its weight promises)", node=row["node"],
                              column=row["parent"]))
    return flags


def section(result: ScoreResult, options: dict[str, Any]) -> tuple[dict[str, pl.DataFrame], list[dict[str, Any]]]:
    table, flags = importance(result, **{k: options[k] for k in OPTIONS})
    return {"nodes": table}, flags
