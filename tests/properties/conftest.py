"""Hypothesis profile of the property tests and a JIT warm-up.

The ``ci`` profile (the default; ``HYPOTHESIS_PROFILE`` picks another registered one) is
deterministic (``derandomize=True``, no example database) and has no deadline: the first call of a
Numba kernel compiles it (or loads it from the on-disk cache).
"""

from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

from engine.kernels import aggregate as aggregate_kernels
from engine.kernels import normalise as normalise_kernels
from engine.kernels import rank as rank_kernels
from tests.strategies import NORMALISATION_METHODS, fixed_params

settings.register_profile("ci", derandomize=True, database=None, deadline=None, max_examples=60,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(scope="session", autouse=True)
def warm_kernels():
    """Compile (or load) every kernel once, before Hypothesis times anything."""
    x = np.array([[1.0, 0.0], [2.0, np.nan], [4.0, 3.0]])
    for name in NORMALISATION_METHODS:
        getattr(normalise_kernels, name)(x, *fixed_params(name, x), np.empty_like(x))
    rank_kernels.rank_desc(x, np.empty_like(x))
    w, out = np.array([0.5, 0.5]), np.empty(3)
    for name in ("arithmetic", "geometric", "harmonic", "copeland"):
        getattr(aggregate_kernels, name)(x, w, 0.0, out)
    aggregate_kernels.generalised(x, w, 2.0, 0.0, out)
    tree = np.full((3, 3), np.nan)
    tree[:, :2] = x
    aggregate_kernels.aggregate_tree(tree, np.array([0, 2]), np.array([0, 1]), w, np.array([0]), np.array([1.0]),
                                     np.array([0.0]))
