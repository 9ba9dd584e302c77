"""What this machine can still give: the memory available to the process (used before work starts
by the data loader and by the analyses' memory checks, :mod:`engine.analysis.memory`)."""

from __future__ import annotations

import os

__all__ = ["available_bytes", "format_bytes", "memory_check_enabled"]


def _meminfo_available() -> int | None:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def _cgroup_available() -> int | None:
    """Room left under a cgroup v2 memory limit (containers), if there is one."""
    try:
        with open("/sys/fs/cgroup/memory.max") as f:
            limit = f.read().strip()
        if limit == "max":
            return None
        with open("/sys/fs/cgroup/memory.current") as f:
            return max(0, int(limit) - int(f.read().strip()))
    except (OSError, ValueError):
        return None


def available_bytes() -> int | None:
    """Memory this process can still take: Linux's MemAvailable (free plus reclaimable cache), else
    the free physical pages; the room under a container's memory limit when that is lower.  None
    when the platform tells neither."""
    known = [b for b in (_meminfo_available(), _cgroup_available()) if b is not None]
    return min(known) if known else None


def format_bytes(n_bytes: float) -> str:
    """``1.5 GiB`` / ``12 MiB``."""
    return f"{n_bytes / 2**30:.1f} GiB" if n_bytes >= 2**30 else f"{n_bytes / 2**20:.0f} MiB"


def memory_check_enabled() -> bool:
    """False when ``CITYRANK_MEMORY_CHECK`` is ``off``/``0``/``no``/``false``."""
    return os.environ.get("CITYRANK_MEMORY_CHECK", "").strip().lower() not in ("off", "0", "no", "false")
