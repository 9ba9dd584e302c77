"""Aggregation stage (the whole tree, post-order) and the final rescaling."""

from __future__ import annotations

from collections.abc import Mapping
from concurrent.futures import Executor

import numpy as np

from ..blocks import over_blocks
from ..kernels import aggregate as kernels
from ..kernels import reference
from ..methods import COPELAND
from ..schema import CompiledTree, Framework

__all__ = ["aggregate", "rescale"]


def aggregate(normalised: np.ndarray, tree: CompiledTree, *, use_reference: bool = False,
              pool: Executor | None = None) -> np.ndarray:
    """Scores of every node: (n_units, n_nodes), indicators first, aggregates in post-order.

    Only this stage (and ranking) needs to run again when weights change: pass a tree compiled
    with other weights (:meth:`engine.schema.Framework.compile`).

    Every unit's scores depend on its own row only (except Copeland, which compares the units), so
    the rows are aggregated in blocks of :data:`engine.blocks.ROW_BLOCK` units, in ``pool``'s threads if given:
    the same floats whatever the blocks or threads."""
    values = np.empty((normalised.shape[0], tree.n_nodes), np.float64)
    values[:, : tree.n_indicators] = normalised
    values[:, tree.n_indicators:] = np.nan
    args = (tree.child_ptr, tree.child_idx, tree.child_weight, tree.method, tree.param, tree.min_coverage)
    if use_reference:
        return reference.aggregate_tree(values, *args)
    if (tree.method == COPELAND).any():
        return kernels.aggregate_tree(values, *args)
    over_blocks(values.shape[0], lambda start, stop: kernels.aggregate_tree(values[start:stop], *args), pool)
    return values  # aggregated in place, a block of rows at a time


def rescale(values: np.ndarray, framework: Framework, weights: Mapping[str, float] | None = None, *,
            copy: bool = True) -> np.ndarray:
    """Apply the framework's final rescaling (``none``, ``x100``, ``top``) to the index column, or
    to every aggregate column when ``scope: aggregates``.

    First, an index with ``renormalise: false`` is multiplied by the sum of its children's weights
    (``weights`` by node id over the file's), which turns the weighted mean into the weighted sum
    ``Σ w x`` of the weights as written (a missing child counts as the mean of the present ones).

    ``copy=False`` rescales ``values`` in place (the same floats, no copy of the scores)."""
    method = framework.rescale
    root = framework.root
    if method.name == "none" and root.renormalise:
        return values
    if copy:
        values = values.copy()
    if not root.renormalise:
        values[:, -1] *= sum((weights or {}).get(c, framework.node(c).weight) for c in root.children)
    if method.name == "none":
        return values
    out = values
    n_ind = len(framework.indicators)
    columns = range(n_ind, out.shape[1]) if method["scope"] == "aggregates" else [out.shape[1] - 1]
    for c in columns:
        if method.name == "x100":
            out[:, c] = out[:, c] * 100.0
        else:
            top = np.nanmax(out[:, c]) if np.isfinite(out[:, c]).any() else np.nan
            out[:, c] = out[:, c] / top if top > 0 else out[:, c]
    return out
