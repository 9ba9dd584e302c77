"""Weight resolution: turn every node's ``weighting`` block into sibling-relative weights.

``manual`` keeps the ``weight`` keys of the file; ``equal`` gives every child 1; ``ahp`` derives
them from the node's pairwise comparison matrix; ``entropy``, ``critic`` and ``pca`` compute them
from the children's scores on the data (normalised indicators, or aggregates computed bottom-up
with the weights already resolved below).  Explicit ``overrides`` (e.g. from a sensitivity
analysis or ``ScoreResult.reaggregate``) win over everything.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ..schema import DATA_DRIVEN_WEIGHTING, Framework
from .aggregate import aggregate

__all__ = ["resolve_weights"]


def resolve_weights(framework: Framework, normalised: np.ndarray | None,
                    overrides: Mapping[str, float] | None = None) -> tuple[dict[str, float], dict[str, Any]]:
    """Relative weight of every non-root node, and a record of how each node's weights were set.

    ``normalised`` is only needed when a node uses a data-driven method."""
    weights = {node: framework.node(node).weight for node in framework.node_ids if node != framework.root.id}
    record: dict[str, Any] = {}
    position = {node_id: k for k, node_id in enumerate(framework.node_ids)}
    for agg in framework.aggregates:
        method = agg.weighting
        if method.name == "manual":
            continue
        from .. import weighting  # imported only when a node needs it
        if method.name == "equal":
            computed = weighting.equal(len(agg.children))
            record[agg.id] = {"method": "equal"}
        elif method.name == "ahp":
            result = weighting.ahp(np.asarray(method["matrix"], float), eigenvector=method["eigenvector"],
                                   random_index=method["random_index"], names=method["order"], node=agg.id)
            by_order = dict(zip(method["order"], result.weights))
            computed = np.array([by_order[c] for c in agg.children])
            record[agg.id] = {"method": "ahp", "eigenvector": result.method, "random_index_table": result.table,
                              "lambda_max": result.lambda_max, "ci": result.ci, "cr": result.cr,
                              "random_index": result.random_index}
        else:
            assert method.name in DATA_DRIVEN_WEIGHTING
            if normalised is None:
                raise ValueError(f"node {agg.id!r}: {method.name} weighting needs data")
            values = aggregate(normalised, framework.compile(weights))
            block = values[:, [position[c] for c in agg.children]]
            if method.name == "pca":
                computed, details = weighting.pca(block)
                record[agg.id] = {"method": "pca", **{k: _plain(v) for k, v in details.items()}}
            else:
                computed = getattr(weighting, method.name)(block)
                record[agg.id] = {"method": method.name}
        for child, w in zip(agg.children, computed):
            weights[child] = float(w)
        record[agg.id]["weights"] = {c: weights[c] for c in agg.children}
    for node, w in (overrides or {}).items():
        if node not in weights:
            from ..errors import SchemaError

            raise SchemaError("cannot set the weight of an unknown node (or of the index)", node=node,
                              path=framework.path, fix=f"use one of the node ids, e.g. {framework.node_ids[0]!r}")
        weights[node] = float(w)
    return weights, record


def _plain(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value
