"""Audit section "structure": is each aggregate statistically coherent?  Pearson and Spearman
correlations (with p-values) among the components of every aggregate, of every node with its
parent and with the index; Cronbach's alpha and a PCA per aggregate (OECD/JRC Handbook 2008,
steps 4 and 6; COINr ``get_corr``, ``get_corr_flags``, ``get_cronbach``, ``get_PCA``).

Missing values: correlations use the units where both values are present (pairwise); alpha and
the PCA use the units where every component is present (listwise).  See docs/audit.md.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl
from scipy import stats

from ..errors import SchemaError
from .result import flag

__all__ = ["OPTIONS", "STAGES", "check_stage", "cronbach_alpha", "indicators_below", "node_values", "pair_statistics",
           "pca", "section"]

OPTIONS: dict[str, Any] = {
    "structure_stage": "normalised",  #: indicator values: normalised (default) | treated | denominated | raw
    "weak": 0.3,  #: |r| below this: a weak pair
    "redundant": 0.9,  #: r above this: a redundant pair
}
SECTION = "structure"
_NAN_PAIR = {"n": 0, "pearson": np.nan, "pearson_p": np.nan, "spearman": np.nan, "spearman_p": np.nan}


#: The pipeline stages whose values the audit can read.
STAGES = ("raw", "denominated", "treated", "normalised")


def check_stage(stage: str, option: str, example: str = "normalised") -> None:
    """Refuse an audit option naming a pipeline stage that is not one of :data:`STAGES`."""
    if stage not in STAGES:
        raise SchemaError(f"audit option {option} must be one of {', '.join(STAGES)}, not {stage!r}", node=None,
                          fix=f"e.g. {option}={example}")


def check(options: dict[str, Any]) -> None:
    """Refuse bad options before scoring."""
    check_stage(options["structure_stage"], "structure_stage", "treated")
    for name in ("weak", "redundant"):
        value = options[name]
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
            raise SchemaError(f"audit option {name} must be a number in [0, 1], not {value!r}", node=None,
                              fix=f"e.g. {name}={OPTIONS[name]}")


def indicators_below(framework, node: str) -> list[int]:
    """Columns (framework order) of the indicators under ``node``."""
    index = {ind.id: j for j, ind in enumerate(framework.indicators)}
    if node in index:
        return [index[node]]
    return [j for child in framework.node(node).children for j in indicators_below(framework, child)]


def node_values(result, stage: str = "normalised") -> np.ndarray:
    """Values (n_kept_units, n_nodes) in ``framework.node_ids`` order: the indicators at ``stage``
    (raw and treated values multiplied by the direction, so that higher is better everywhere) and
    the aggregates' scores."""
    st, fw = result.stages, result.framework
    n_ind = len(fw.indicators)
    direction = np.array([ind.direction for ind in fw.indicators], np.float64)
    x = {"raw": lambda: st.inputs.raw[st.kept] * direction, "denominated": lambda: st.denominated[st.kept] * direction,
         "treated": lambda: st.treated * direction, "normalised": lambda: st.normalised}[stage]()
    return np.hstack([x, st.scores[:, n_ind:]])


def pair_statistics(x: np.ndarray, y: np.ndarray) -> dict[str, Any]:
    """Pearson r and Spearman rho with their two-sided p-values (scipy.stats) over the units where
    both are present; NaN when fewer than 2 such units or a constant side, p NaN when fewer than 3."""
    both = ~(np.isnan(x) | np.isnan(y))
    x, y = x[both], y[both]
    n = int(x.size)
    if n < 2 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return {**_NAN_PAIR, "n": n}
    if n < 3:
        r = float(np.sign((x[1] - x[0]) * (y[1] - y[0])))
        return {"n": n, "pearson": r, "pearson_p": np.nan, "spearman": r, "spearman_p": np.nan}
    pearson = stats.pearsonr(x, y)
    spearman = stats.spearmanr(x, y)
    return {"n": n, "pearson": float(pearson.statistic), "pearson_p": float(pearson.pvalue),
            "spearman": float(spearman.statistic), "spearman_p": float(spearman.pvalue)}


def _complete(items: np.ndarray) -> np.ndarray:
    return items[~np.isnan(items).any(axis=1)]


def cronbach_alpha(items: np.ndarray) -> tuple[float, int]:
    """Cronbach's alpha of the columns of ``items`` (n_units, k) over the units with every value
    present, and that number of units: ``k / (k - 1) · (1 − Σ var(item) / var(Σ item))``
    (Cronbach 1951, sample variances).  NaN when k < 2, fewer than 2 units, or a constant total."""
    items = _complete(items)
    n, k = items.shape
    if k < 2 or n < 2:
        return np.nan, n
    total = items.sum(axis=1).var(ddof=1)
    if total == 0:
        return np.nan, n
    return float(k / (k - 1) * (1 - items.var(axis=0, ddof=1).sum() / total)), n


def pca(items: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """Principal components of the correlation matrix of ``items`` (n_units, k), units with every
    value present: eigenvalues (descending) and the first eigenvector (unit length, signed so that
    its sum is >= 0), and the number of units.  Raises ValueError for a constant column."""
    items = _complete(items)
    if items.shape[0] < 2 or (np.ptp(items, axis=0) == 0).any():
        raise ValueError("a constant component or fewer than 2 units")
    corr = np.atleast_2d(np.corrcoef(items, rowvar=False))
    values, vectors = np.linalg.eigh(corr)
    order = np.argsort(values)[::-1]
    first = vectors[:, order[0]]
    return values[order], first if first.sum() >= 0 else -first, items.shape[0]


def _classify(r: float, opts: dict) -> str | None:
    if not np.isfinite(r):
        return None
    if r > opts["redundant"]:
        return "redundant"
    if abs(r) < opts["weak"]:
        return "weak"
    return "negative" if r < 0 else None


#: Level of each class by kind of pair: among siblings, with the parent, with the index.
_LEVELS = {"components": {"redundant": "warning", "negative": "warning", "weak": "note"},
           "parent": {"redundant": "note", "negative": "warning", "weak": "warning"},
           "index": {"redundant": "note", "negative": "warning", "weak": "note"}}


def _correlations(fw, values: np.ndarray, opts: dict) -> tuple[pl.DataFrame, list]:
    ids = fw.node_ids
    col = {node: c for c, node in enumerate(ids)}
    root = fw.root.id
    pairs = [("components", agg.id, a, b) for agg in fw.aggregates
             for i, a in enumerate(agg.children) for b in agg.children[i + 1:]]
    pairs += [("parent", fw.node(node).parent, node, fw.node(node).parent) for node in ids if node != root]
    pairs += [("index", root, node, root) for node in ids if node != root and fw.node(node).parent != root]
    rows, flags = [], []
    for kind, context, a, b in pairs:
        row = {"kind": kind, "aggregate": context, "node": a, "other": b,
               **pair_statistics(values[:, col[a]], values[:, col[b]])}
        row["flag"] = _classify(row["pearson"], opts)
        rows.append(row)
        if row["flag"] is not None:
            what = {"components": f"with {b!r}, a fellow component of {context!r}", "parent": f"with its parent {b!r}",
                    "index": f"with the index {b!r}"}[kind]
            flags.append(flag(SECTION, _LEVELS[kind][row["flag"]], f"{row['flag']} correlation {what}: Pearson r = "
                              f"{row['pearson']:.2f}, Spearman rho = {row['spearman']:.2f} (n = {row['n']})",
                              node=a, column=b))
    schema = {"kind": pl.String, "aggregate": pl.String, "node": pl.String, "other": pl.String, "n": pl.Int64,
              "pearson": pl.Float64, "pearson_p": pl.Float64, "spearman": pl.Float64, "spearman_p": pl.Float64,
              "flag": pl.String}
    table = pl.DataFrame(rows, schema=schema)
    few = table.filter(pl.col("n") < 3).group_by("aggregate", maintain_order=True).agg(pl.col("n").min())
    flags += [flag(SECTION, "warning", f"too few units with values (n = {n}) for p-values of the correlations at this "
                   "node (3 or more needed)", node=node) for node, n in few.iter_rows()]
    return table, flags


def _coherence(fw, values: np.ndarray) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame, list]:
    col = {node: c for c, node in enumerate(fw.node_ids)}
    alphas, eigen, loadings, flags = [], [], [], []
    for agg in fw.aggregates:
        items = values[:, [col[c] for c in agg.children]]
        k = len(agg.children)
        alpha, n = cronbach_alpha(items)
        alphas.append({"aggregate": agg.id, "n_components": k, "n_units": n, "alpha": alpha})
        if k < 2:
            flags.append(flag(SECTION, "warning", f"one component ({agg.children[0]!r}): Cronbach's alpha and the PCA "
                              "are undefined (the aggregate repeats its component)", node=agg.id))
            continue
        try:
            eigenvalues, first, n = pca(items)
        except ValueError:
            flags.append(flag(SECTION, "warning", f"alpha and PCA undefined: a component is constant or fewer than 2 "
                              f"units have every component (n = {n})", node=agg.id))
            continue
        if not np.isfinite(alpha):
            flags.append(flag(SECTION, "warning", "Cronbach's alpha undefined: the sum of the components is constant",
                              node=agg.id))
        share = eigenvalues / eigenvalues.sum()
        eigen += [{"aggregate": agg.id, "component": c + 1, "eigenvalue": float(v), "variance_share": float(s),
                   "cumulative_share": float(cs)}
                  for c, (v, s, cs) in enumerate(zip(eigenvalues, share, np.cumsum(share), strict=True))]
        loadings += [{"aggregate": agg.id, "node": child, "weight": float(w),
                      "loading": float(w * np.sqrt(eigenvalues[0]))}
                     for child, w in zip(agg.children, first, strict=True)]
        above = int((eigenvalues > 1).sum())
        if above > 1:
            flags.append(flag(SECTION, "warning", f"not one-dimensional: {above} eigenvalues exceed 1 "
                              f"({', '.join(f'{v:.2f}' for v in eigenvalues[:above])}); the first component explains "
                              f"{share[0]:.0%} of the variance", node=agg.id))
    return (pl.DataFrame(alphas, schema={"aggregate": pl.String, "n_components": pl.Int64, "n_units": pl.Int64,
                                         "alpha": pl.Float64}),
            pl.DataFrame(eigen, schema={"aggregate": pl.String, "component": pl.Int64, "eigenvalue": pl.Float64,
                                        "variance_share": pl.Float64, "cumulative_share": pl.Float64}),
            pl.DataFrame(loadings, schema={"aggregate": pl.String, "node": pl.String, "weight": pl.Float64,
                                           "loading": pl.Float64}), flags)


def section(result, options: dict[str, Any]) -> tuple[dict[str, pl.DataFrame], list[dict]]:
    """Tables ``correlations``, ``alpha``, ``pca`` and ``pca_loadings`` and the flags of the
    structure section."""
    fw = result.framework
    values = node_values(result, options["structure_stage"])
    flags = []
    for c, node in enumerate(fw.node_ids):
        present = values[:, c][~np.isnan(values[:, c])]
        if present.size and np.ptp(present) == 0:
            flags.append(flag(SECTION, "warning", f"constant over the units ({options['structure_stage']} values "
                              f"{present[0]:g}): its correlations are undefined", node=node))
    correlations, more = _correlations(fw, values, options)
    alpha, eigen, loadings, more2 = _coherence(fw, values)
    return {"correlations": correlations, "alpha": alpha, "pca": eigen, "pca_loadings": loadings}, flags + more + more2
