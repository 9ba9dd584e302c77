"""The one place where Numba flags are set.

No ``fastmath``: every kernel must be bit-reproducible and agree with its reference twin.
``cache=True`` stores compiled machine code next to the module so that a second process starts
warm.

Vector width: on AVX-512 hosts LLVM's tuning for recent Intel cores caps auto-vectorised loops at
256-bit registers (``prefer-256-bit``).  The kernels' hot loops run over units with no
reassociation, so a wider register changes how many lanes run at once, never an operation or its
order: the floats are the same.  :func:`prefer_wide_vectors` lifts the cap (measured: weighted
sums ~25-35 % faster in isolation, a 10⁶-replicate Monte Carlo run ~7 %), unless the user set
``NUMBA_CPU_FEATURES`` or ``CITYRANK_VECTOR_WIDTH=256``.  It changes Numba's process-wide
target, so it applies only before anything in the process has been compiled.
"""

from __future__ import annotations

import os

from numba import njit

JIT = {"cache": True, "nogil": True, "error_model": "numpy"}
PARALLEL_JIT = {**JIT, "parallel": True}


def prefer_wide_vectors() -> bool:
    """Let LLVM use 512-bit vectors on an AVX-512 host (see the module docstring); returns whether
    the setting was made."""
    from numba.core import config
    from numba.core.codegen import get_host_cpu_features

    if os.environ.get("CITYRANK_VECTOR_WIDTH", "").strip() == "256" or config.CPU_FEATURES is not None:
        return False
    features = get_host_cpu_features()
    if "+avx512f" not in features.split(","):
        return False
    config.CPU_FEATURES = f"{features},-prefer-256-bit"
    return True


prefer_wide_vectors()

jit = njit(**JIT)

__all__ = ["JIT", "PARALLEL_JIT", "jit", "njit", "prefer_wide_vectors"]
