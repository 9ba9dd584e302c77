"""Designs: U(0,1) columns keyed by (seed, block), and their mapping to replicate parameters.

Randomness is drawn here, outside the kernels: block ``b`` of a run with seed ``s`` always uses
``PCG64(SeedSequence(s, spawn_key=(b,)))``, so a replicate depends only on (seed, block, position)
— never on threads, partitions or workers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import gammaincinv

from ..kernels.montecarlo import noise_weights
from .spec import Factor

__all__ = ["Parameters", "ParameterMap", "RNG_BLOCK", "block_uniforms", "replicate_uniforms", "map_parameters",
           "n_columns"]

#: Replicates per random stream: replicate r uses the stream of RNG block r // RNG_BLOCK.  Fixed,
#: so that the draws do not depend on the block size of the work, on chunks, threads or workers.
RNG_BLOCK = 1024


@dataclass(frozen=True)
class Parameters:
    """Per-replicate inputs of the Monte Carlo kernel (rows = replicates)."""

    node_weight: np.ndarray  #: float64 (n, n_nodes): raw weights; renormalised within parents by the kernel.
    variant: np.ndarray  #: int64 (n,): index of the normalised matrix (treatment × normalisation × settings).
    agg_code: np.ndarray  #: int64 (n, n_aggregates): aggregation method per node.
    excluded: np.ndarray  #: int64 (n,): excluded indicator column, −1 for none.

    def __len__(self) -> int:
        return self.node_weight.shape[0]

    def take(self, index: np.ndarray) -> Parameters:
        """Replicates ``index`` (in that order)."""
        return Parameters(self.node_weight[index], self.variant[index], self.agg_code[index], self.excluded[index])

    def slice(self, start: int, stop: int) -> Parameters:
        return Parameters(self.node_weight[start:stop], self.variant[start:stop], self.agg_code[start:stop],
                          self.excluded[start:stop])


def n_columns(factors: list[Factor]) -> int:
    return sum(f.width for f in factors)


def block_uniforms(seed: int, block: int, columns: int) -> np.ndarray:
    """The U(0,1) design of one RNG block: (RNG_BLOCK, columns), a pure function of (seed, block)."""
    rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=(block,))))
    return rng.random((RNG_BLOCK, columns))


def replicate_uniforms(seed: int, start: int, stop: int, columns: int) -> np.ndarray:
    """Design rows of replicates ``start .. stop - 1`` (each row depends only on seed and index)."""
    first, last = start // RNG_BLOCK, (stop - 1) // RNG_BLOCK
    if first == last:
        u = block_uniforms(seed, first, columns)
    else:
        u = np.concatenate([block_uniforms(seed, b, columns) for b in range(first, last + 1)])
    return u[start - first * RNG_BLOCK: stop - first * RNG_BLOCK]


def _noise_runs(factors: list[Factor]) -> list:
    """The factors in order, each maximal run of noise factors on distinct nodes as one list (its
    columns map elementwise by the same operations, so one array operation gives the same floats)."""
    out: list = []
    nodes: set = set()  # nodes of the current run
    for f in factors:
        if f.kind != "noise":
            out.append(f)
        elif out and isinstance(out[-1], list) and f.nodes[0] not in nodes:
            out[-1].append(f)
            nodes.add(f.nodes[0])
        else:
            out.append([f])
            nodes = {f.nodes[0]}
    return out


def map_parameters(u: np.ndarray, factors: list[Factor], problem) -> Parameters:
    """Map design rows ``u`` (n, columns) to kernel parameters.

    * noise: ``w (1 + φ (2U − 1))``; range: ``lo + U (hi − lo)``;
    * Dirichlet(c · w) for a sibling group, by the inverse gamma CDF of each coordinate, rescaled
      to the group's nominal total;
    * discrete choices are triggers: ``floor(U k)`` picks one of k alternatives (a normalisation,
      an aggregation method, a weight vector of ``weight_sets``, a value of a setting);
    * exclusion: ``floor(U (n_indicators + 1)) − 1`` (−1 = keep all).

    A run that maps many blocks makes one :class:`ParameterMap` and calls it per block."""
    return ParameterMap(factors, problem)(u)


def _trigger(u: np.ndarray, k: int) -> np.ndarray:
    """``floor(U k)``: which of ``k`` equally likely alternatives each row takes."""
    return np.minimum((u * k).astype(np.int64), k - 1)


class ParameterMap:
    """:func:`map_parameters` for one list of factors and one problem, with the per-factor set-up
    (node positions, noise groups, which node weights no factor sets) done once: a run maps one
    RNG block at a time, and that set-up is Python work that would otherwise be paid for
    every block, by every lane."""

    def __init__(self, factors: list[Factor], problem):
        self.problem = problem
        position = problem.position
        self.steps: list = []  # ("noise", columns, nodes, phi) or a Factor
        covered: set[int] = set()  # nodes whose weight a factor sets in every row
        for group in _noise_runs(factors):
            if isinstance(group, list):  # consecutive noise factors on distinct nodes: one array operation
                nodes = np.array([position[f.nodes[0]] for f in group], np.int64)
                self.steps.append(("noise", np.array([f.column for f in group], np.int64), nodes,
                                   np.array([f.params["noise"] for f in group])))
                covered.update(nodes.tolist())
                continue
            self.steps.append(group)
            if group.kind == "range":  # one node per range factor (the one __call__ writes)
                covered.add(position[group.nodes[0]])
            elif group.kind in ("dirichlet", "weight_set"):
                covered.update(position[m] for m in group.nodes)
            elif group.kind == "weighting":
                covered.update(position[m] for m in group.params["children"])
        #: per weight_set / weighting factor: the nodes it sets, and its vectors as rows (k, those nodes);
        #: nodes a weight set leaves out keep their weight
        self.weight_sets = {f.name: ([position[m] for m in f.nodes], np.array(
            [[w.get(m, problem.nominal_weight[position[m]]) for m in f.nodes] for w in f.params["sets"]], np.float64))
            for f in factors if f.kind == "weight_set"}
        self.weight_sets.update({f.name: ([position[m] for m in f.params["children"]], problem.weight_vectors[f.name])
                                 for f in factors if f.kind == "weighting"})
        self.n_settings = sum(f.kind == "setting" for f in factors)
        n_nodes = len(problem.nominal_weight)
        #: nodes that keep their nominal weight (the others are overwritten in every row)
        self.nominal_nodes = np.array([k for k in range(n_nodes) if k not in covered], np.int64)

    def __call__(self, u: np.ndarray) -> Parameters:
        problem = self.problem
        position = problem.position
        n = u.shape[0]
        node_weight = np.empty((n, len(problem.nominal_weight)))
        node_weight[:, self.nominal_nodes] = problem.nominal_weight[self.nominal_nodes]
        agg_code = np.tile(problem.base_codes, (n, 1))
        excluded = np.full(n, -1, np.int64)
        norm_choice = np.zeros(n, np.int64)
        treatment_on = np.ones(n, np.int64) if problem.has_treatment_variants else np.zeros(n, np.int64)
        setting_choice = np.zeros((n, self.n_settings), np.int64)
        setting = 0
        for step in self.steps:
            if isinstance(step, tuple):
                _, columns, nodes, phi = step
                noise_weights(np.ascontiguousarray(u, np.float64), columns, nodes, phi, problem.nominal_weight,
                              node_weight)
                continue
            f = step
            col = u[:, f.column:f.column + f.width]
            if f.kind == "range":
                lo, hi = f.params["range"]
                node_weight[:, position[f.nodes[0]]] = lo + col[:, 0] * (hi - lo)
            elif f.kind == "dirichlet":
                ks = [position[m] for m in f.nodes]
                nominal = problem.nominal_weight[ks]
                shape = f.params["concentration"] * nominal / nominal.sum()
                gammas = gammaincinv(shape[None, :], np.clip(col, 1e-300, 1.0 - 1e-16))
                gammas = np.maximum(gammas, 1e-300)
                node_weight[:, ks] = gammas / gammas.sum(axis=1, keepdims=True) * nominal.sum()
            elif f.kind in ("weight_set", "weighting"):
                nodes, sets = self.weight_sets[f.name]
                node_weight[:, nodes] = sets[_trigger(col[:, 0], len(sets))]
            elif f.kind == "setting":
                setting_choice[:, setting] = _trigger(col[:, 0], len(f.params["values"]))
                setting += 1
            elif f.kind == "normalisation":
                norm_choice = np.minimum((col[:, 0] * len(f.params["choices"])).astype(np.int64),
                                         len(f.params["choices"]) - 1)
            elif f.kind == "aggregation":
                choice = np.minimum((col[:, 0] * len(f.params["codes"])).astype(np.int64), len(f.params["codes"]) - 1)
                codes = np.asarray(f.params["codes"], np.int64)[choice]
                for node in f.nodes:
                    agg_code[:, problem.aggregate_index[node]] = codes
            elif f.kind == "exclusion":
                m = problem.n_indicators + 1
                excluded = np.minimum((col[:, 0] * m).astype(np.int64), m - 1) - 1
            elif f.kind == "treatment":
                treatment_on = (col[:, 0] < 0.5).astype(np.int64)
        variant = problem.variant_index(treatment_on, norm_choice, setting_choice)
        return Parameters(node_weight, np.ascontiguousarray(variant), agg_code, excluded)
