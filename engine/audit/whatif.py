"""Audit section "whatif": remove each indicator or aggregate in turn and see the ranks move; compare
two frameworks on the same data (see docs/audit.md).

Removing a node re-runs only aggregation, rescaling and ranking on the audited run's normalised
matrix (no imputation, treatment or normalisation again): the node gets weight 0 in
:meth:`engine.schema.Framework.compile` (which renormalises its siblings' weights) and is then left
out of its parent's component list, so that its parent is computed exactly as from a framework
file without it (coverage counts, a zero under a geometric mean).  What stays as in the audited
run: the units (screening is not redone) and the resolved weights (a parent or ancestor weighted
by entropy, CRITIC or PCA keeps its weights, renormalised, instead of estimating them again; a
note says so).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import polars as pl

from ..errors import SchemaError
from ..pipeline import RANK_SUFFIX, ScoreResult, score
from ..schema import DATA_DRIVEN_WEIGHTING, CompiledTree
from ..stages import aggregate, rank, rescale
from .result import flag

__all__ = ["OPTIONS", "compare_frameworks", "index_ranks", "rank_shifts", "section", "what_if"]

OPTIONS: dict[str, Any] = {
    "whatif_nodes": None,  #: Nodes to remove one at a time (None: every indicator and aggregate).
    "compare_with": None,  #: A second framework (file or shipped name) to compare on the same data.
}


def as_result(framework_or_result: Any, data: Any = None) -> ScoreResult:
    """A :class:`ScoreResult` as given, or the result of scoring a framework (file, shipped name or
    :class:`~engine.Framework`) on ``data``."""
    if isinstance(framework_or_result, ScoreResult):
        return framework_or_result
    return score(framework_or_result, data)


def without(tree: CompiledTree, columns: Sequence[int]) -> CompiledTree:
    """``tree`` with the value-matrix ``columns`` left out of their parents' component lists (their
    weights should be 0 already, so the remaining weights keep the renormalisation of
    :meth:`~engine.schema.Framework.compile`)."""
    keep = ~np.isin(tree.child_idx, np.asarray(columns, np.int64))
    counts = np.add.reduceat(keep.astype(np.int64), tree.child_ptr[:-1]) if keep.size else keep.astype(np.int64)
    ptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    return replace(tree, child_ptr=ptr, child_idx=tree.child_idx[keep], child_weight=tree.child_weight[keep])


def index_ranks(result: ScoreResult, weights: Mapping[str, float] | None = None,
                removed: Sequence[str] = ()) -> np.ndarray:
    """Ranks of the index (float, NaN = missing; rows as ``result.stages``) with some weights
    replaced and some nodes removed, from the run's normalised matrix: the aggregation, rescaling
    and ranking stages of the pipeline, nothing else."""
    fw, stages = result.framework, result.stages
    tree = fw.compile({**stages.weights, **(weights or {}), **{n: 0.0 for n in removed}})
    if removed:
        position = {n: k for k, n in enumerate(fw.node_ids)}
        tree = without(tree, [position[n] for n in removed])
    scores = rescale(aggregate(stages.normalised, tree), fw)
    return rank(scores[:, -1:])[:, 0]


def rank_shifts(result: ScoreResult, ranks: Mapping[str, np.ndarray]) -> pl.DataFrame:
    """Long table: ``variant``, unit id (and name), ``rank`` (audited run), ``new_rank``, ``shift``
    (``rank − new_rank``: positive = the unit moves up), in the rows of ``result.stages``."""
    stages = result.stages
    unit = result.dataset.unit
    units = stages.inputs.units.filter(pl.Series(stages.kept))
    base = _int(stages.ranks[:, -1])
    frames = []
    for variant, new in ranks.items():
        new = _int(new)
        frames.append(pl.DataFrame({"variant": pl.Series([variant] * len(units), dtype=pl.String), unit: units,
                                    "rank": base, "new_rank": new, "shift": base - new}))
    table = pl.concat(frames) if frames else pl.DataFrame(schema={"variant": pl.String, unit: units.dtype,
                                                                   "rank": pl.Int64, "new_rank": pl.Int64,
                                                                   "shift": pl.Int64})
    names = result.unit_names()
    if names.width > 1:
        table = table.join(names, on=unit, how="left", maintain_order="left")
    return table


def _int(ranks: np.ndarray) -> pl.Series:
    return pl.Series(ranks).fill_nan(None).cast(pl.Int64)


def _summary_row(base: np.ndarray, new: np.ndarray) -> dict[str, Any]:
    both = np.isfinite(base) & np.isfinite(new)
    diff = np.abs(base[both] - new[both])
    return {"mean_abs_shift": float(diff.mean()) if diff.size else None,
            "max_abs_shift": int(diff.max()) if diff.size else None,
            "units_moved": int((diff > 0).sum()),
            "spearman": _spearman(base[both], new[both]),
            "units_lost": int((np.isfinite(base) & ~np.isfinite(new)).sum())}


def _spearman(a: np.ndarray, b: np.ndarray) -> float | None:
    if a.size < 3 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return None
    from scipy.stats import spearmanr

    return float(spearmanr(a, b).statistic)


def _nodes(fw, nodes: Sequence[str] | None) -> list[str]:
    """The nodes to remove (default: all but the index); an unknown id or the index is refused."""
    if nodes is not None and (isinstance(nodes, str) or not all(isinstance(n, str) for n in nodes)):
        raise SchemaError(f"the nodes to remove must be a list of node ids, not {nodes!r}", node=None, path=fw.path,
                          fix=f"e.g. [{fw.indicators[0].id!r}]")
    nodes = list(nodes) if nodes is not None else [n for n in fw.node_ids if n != fw.root.id]
    bad = [n for n in nodes if n not in fw.node_ids or n == fw.root.id]
    if bad:
        raise SchemaError(f"cannot remove {bad[0]!r} in a what-if: " + (
            "it is the index" if bad[0] == fw.root.id else "no such node"), node=bad[0], path=fw.path,
            fix=f"name indicators or aggregates below the index, e.g. {fw.indicators[0].id!r}")
    return nodes


def _ancestors(fw, node: str) -> list[str]:
    parents = []
    while fw.node(node).parent is not None:
        node = fw.node(node).parent
        parents.append(node)
    return parents


def check_data(options: dict[str, Any], framework, dataset) -> None:
    """Refuse, before scoring, nodes that cannot be removed and a comparison framework that cannot be loaded."""
    _nodes(framework, options["whatif_nodes"])
    if options["compare_with"] is not None:
        from ..schema import load_framework

        load_framework(options["compare_with"])


def what_if(result: Any, nodes: Sequence[str] | None = None, *, data: Any = None
            ) -> tuple[pl.DataFrame, pl.DataFrame, list[dict[str, Any]]]:
    """Remove each of ``nodes`` (default: every indicator and aggregate) in turn and re-rank.

    Parameters
    ----------
    result
        A :class:`~engine.ScoreResult`, or a framework (scored on ``data``).
    nodes
        Node ids to remove one at a time; the index itself cannot be removed.

    Returns
    -------
    summary, shifts, flags
        ``summary``: one row per removal (``removed``, ``kind``, ``parent``, ``mean_abs_shift``,
        ``max_abs_shift``, ``units_moved``, ``spearman`` with the audited ranks, ``units_lost``);
        ``shifts``: one row per removal and unit (:func:`rank_shifts`, ``variant`` = the removed
        node); ``flags``: removals that could not be made (a parent with that one component).

    Raises
    ------
    SchemaError
        An unknown node id, or the index.
    """
    result = as_result(result, data)
    fw = result.framework
    nodes = _nodes(fw, nodes)
    base = result.stages.ranks[:, -1]
    rows, ranks, flags = [], {}, []
    for node in nodes:
        parent = fw.node(node).parent
        kind = "indicator" if node in {i.id for i in fw.indicators} else "aggregate"
        if len(fw.node(parent).children) < 2:
            flags.append(flag("whatif", "note", f"not removed: it is the only component of {parent!r}, which "
                              "would be left empty", node=node, column=parent))
            continue
        driven = next((a for a in _ancestors(fw, node) if fw.node(a).weighting.name in DATA_DRIVEN_WEIGHTING), None)
        if driven is not None:
            flags.append(flag("whatif", "note", f"{driven!r} is weighted by {fw.node(driven).weighting.name}: "
                              "without this node its weights are kept as in the audit (renormalised), not "
                              "estimated again", node=node, column=driven))
        new = index_ranks(result, removed=[node])
        ranks[node] = new
        rows.append({"removed": node, "kind": kind, "parent": parent, **_summary_row(base, new)})
    schema = {"removed": pl.String, "kind": pl.String, "parent": pl.String, "mean_abs_shift": pl.Float64,
              "max_abs_shift": pl.Int64, "units_moved": pl.Int64, "spearman": pl.Float64, "units_lost": pl.Int64}
    summary = pl.DataFrame(rows, schema=schema, orient="row")
    return summary, rank_shifts(result, ranks), flags


def compare_frameworks(first: Any, second: Any, data: Any = None) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Ranks of the same units under two frameworks.

    ``first``/``second``: :class:`~engine.ScoreResult` objects, or frameworks scored on ``data``
    (default: the first framework's own dataset, which the second then uses too).  Units are matched
    by id.  Returns ``summary`` (one row: both framework ids, ``units`` in both, ``spearman`` of the
    index scores over units scored by both, ``mean_abs_shift``, ``max_abs_shift``, ``units_moved``)
    and ``units`` (unit id [and name], ``rank_first``, ``rank_second``, ``shift`` = first − second:
    positive = the unit is ranked higher by the second)."""
    first = as_result(first, data)
    if not isinstance(second, ScoreResult):
        second = score(second, first.dataset if data is None else data)
    unit = first.dataset.unit
    if second.dataset.unit != unit:
        raise SchemaError(f"the two results identify units by different columns ({unit!r}, "
                          f"{second.dataset.unit!r})", node=None, fix="score both on the same data")
    a = first.table.select(unit, pl.col(first.index_id).alias("_score_first"),
                           pl.col(first.index_id + RANK_SUFFIX).cast(pl.Int64).alias("rank_first"))
    b = second.table.select(unit, pl.col(second.index_id).alias("_score_second"),
                            pl.col(second.index_id + RANK_SUFFIX).cast(pl.Int64).alias("rank_second"))
    table = a.join(b, on=unit, how="inner", maintain_order="left").with_columns(
        shift=pl.col("rank_first") - pl.col("rank_second"))
    both = table.drop_nulls(["rank_first", "rank_second"])
    diff = both["shift"].abs()
    summary = pl.DataFrame([{
        "first": first.framework.id, "second": second.framework.id, "units": table.height,
        "spearman": _spearman(both["_score_first"].to_numpy(), both["_score_second"].to_numpy()),
        "mean_abs_shift": float(diff.mean()) if both.height else None,
        "max_abs_shift": int(diff.max()) if both.height else None,
        "units_moved": int((diff > 0).sum())}])
    names = first.unit_names()
    units = table.drop("_score_first", "_score_second")
    if names.width > 1:
        units = units.join(names, on=unit, how="left", maintain_order="left")
    return summary, units


def section(result: ScoreResult, options: dict[str, Any]) -> tuple[dict[str, pl.DataFrame], list[dict[str, Any]]]:
    summary, shifts, flags = what_if(result, options.get("whatif_nodes"))
    tables = {"summary": summary, "shifts": shifts}
    for row in summary.filter(pl.col("units_lost") > 0).iter_rows(named=True):
        flags.append(flag("whatif", "warning", f"without it {row['units_lost']} unit(s) lose their index score",
                          node=row["removed"]))
    if options.get("compare_with") is not None:
        tables["compare"], tables["compare_units"] = compare_frameworks(result, options["compare_with"])
    return tables, flags
