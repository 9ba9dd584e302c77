"""The one place where Numba flags are set.

No ``fastmath``: every kernel must be bit-reproducible and agree with its reference twin.
``cache=True`` stores compiled machine code so that a second process starts warm, in a folder
named after a hash of every kernel source file (:func:`keyed_cache_dir`): Numba checks only the
timestamp of the file that defines a kernel, so a cached kernel that inlined a function of another
file that has since changed would otherwise be loaded stale.

Vector width: on AVX-512 hosts LLVM's tuning for recent Intel cores caps auto-vectorised loops at
256-bit registers (``prefer-256-bit``).  The kernels' hot loops run over units with no
reassociation, so a wider register changes how many lanes run at once, never an operation or its
order: the floats are the same.  :func:`prefer_wide_vectors` lifts the cap (timings:
docs/performance.md), unless the user set ``NUMBA_CPU_FEATURES`` or ``CITYRANK_VECTOR_WIDTH=256``.
It changes Numba's process-wide target, so it applies only before anything in the process has been
compiled.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from numba import njit, prange

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


def kernel_sources() -> list[Path]:
    """The files whose code or constants compiled kernels hold: every module of this package and the
    engine modules they import (a test checks that the list covers their imports)."""
    folder = Path(__file__).parent
    return [*sorted(folder.glob("*.py")), *(path for path in [folder.parent / "methods.py"] if path.exists())]


def kernel_source_digest() -> str:
    """16 hex digits of a SHA-256 over the names and bytes of :func:`kernel_sources`."""
    digest = hashlib.sha256()
    for path in kernel_sources():
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def keyed_cache_dir() -> Path:
    """Point Numba's cache at ``<base>/cityrank-<kernel_source_digest()>`` and return it.

    ``<base>`` is the user's ``NUMBA_CACHE_DIR`` if set, else ``engine/kernels/__pycache__`` when
    writable, else the user cache folder (``~/.cache/cityrank`` on Linux).  Any change to any kernel
    file gives a new, empty folder, so a stale machine-code file can never be loaded.  Must run
    before the first kernel is decorated (this module is imported first by every kernel module)."""
    from numba.core import config
    from numba.misc.appdirs import AppDirs

    base = os.environ.get("NUMBA_CACHE_DIR", "").strip()
    if not base:
        here = Path(__file__).parent / "__pycache__"
        try:
            here.mkdir(exist_ok=True)
            base = str(here) if os.access(here, os.W_OK) else ""
        except OSError:
            base = ""
        base = base or AppDirs("cityrank", "cityrank").user_cache_dir
    folder = Path(base) / f"cityrank-{kernel_source_digest()}"
    config.CACHE_DIR = str(folder)
    return folder


prefer_wide_vectors()
keyed_cache_dir()

jit = njit(**JIT)


@njit(**PARALLEL_JIT)
def _probe(x):  # pragma: no cover - compiled
    for i in prange(x.size):
        x[i] = i


def parallel_kernels_threadsafe() -> bool:
    """Whether ``parallel=True`` kernels (:data:`PARALLEL_JIT`) may run in several Python threads
    at once.  Numba's ``workqueue`` threading layer, its fallback where neither TBB nor OpenMP is
    found (e.g. macOS without libomp, or ``NUMBA_THREADING_LAYER=workqueue``), aborts the process
    on such a launch; ``omp`` and ``tbb`` allow it.  The layer is fixed by the process's first
    parallel launch, made here if none was made yet."""
    import numba

    try:
        layer = numba.threading_layer()
    except ValueError:  # no parallel kernel launched yet: launch one
        import numpy as np

        _probe(np.zeros(2))
        layer = numba.threading_layer()
    return layer != "workqueue"


__all__ = ["JIT", "PARALLEL_JIT", "jit", "keyed_cache_dir", "kernel_source_digest", "kernel_sources", "njit",
           "parallel_kernels_threadsafe", "prefer_wide_vectors"]
