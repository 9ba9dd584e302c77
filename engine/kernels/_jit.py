"""The one place where Numba flags are set.

No ``fastmath``: every kernel must be bit-reproducible and agree with its reference twin.
``cache=True`` stores compiled machine code next to the module so that a second process starts
warm.
"""

from numba import njit

JIT = {"cache": True, "nogil": True, "error_model": "numpy"}
PARALLEL_JIT = {**JIT, "parallel": True}

jit = njit(**JIT)

__all__ = ["JIT", "PARALLEL_JIT", "jit", "njit"]
