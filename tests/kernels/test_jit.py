"""The vector-width setting of the kernels (engine.kernels._jit.prefer_wide_vectors)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from numba.core import codegen, config

from engine.kernels._jit import prefer_wide_vectors


@pytest.fixture
def fresh_config(monkeypatch):
    monkeypatch.setattr(config, "CPU_FEATURES", None)
    monkeypatch.delenv("CITYRANK_VECTOR_WIDTH", raising=False)
    return config


def test_lifts_the_256_bit_cap_on_an_avx512_host(fresh_config, monkeypatch):
    monkeypatch.setattr(codegen, "get_host_cpu_features", lambda: "+avx2,+avx512f,+fma")
    assert prefer_wide_vectors()
    assert fresh_config.CPU_FEATURES == "+avx2,+avx512f,+fma,-prefer-256-bit"


def test_leaves_other_hosts_alone(fresh_config, monkeypatch):
    monkeypatch.setattr(codegen, "get_host_cpu_features", lambda: "+avx2,-avx512f,+fma")
    assert not prefer_wide_vectors()
    assert fresh_config.CPU_FEATURES is None


def test_the_user_can_opt_out(fresh_config, monkeypatch):
    monkeypatch.setattr(codegen, "get_host_cpu_features", lambda: "+avx512f")
    monkeypatch.setenv("CITYRANK_VECTOR_WIDTH", "256")
    assert not prefer_wide_vectors()
    assert fresh_config.CPU_FEATURES is None


def test_the_users_numba_features_win(fresh_config, monkeypatch):
    monkeypatch.setattr(codegen, "get_host_cpu_features", lambda: "+avx512f")
    monkeypatch.setattr(config, "CPU_FEATURES", "+avx2")
    assert not prefer_wide_vectors()
    assert config.CPU_FEATURES == "+avx2"


_RUN = """
import hashlib, numpy as np
from numba.core import config
from engine.analysis.uncertainty import uncertainty
run = uncertainty("ai-city-2024", spec={"weights": [{"depth": 1, "noise": 0.25}, {"depth": 3, "noise": 0.25}]},
                  replicates=4096, seed=3, threads=2)
table = run.units
h = hashlib.sha256()
for name in table.columns:
    column = table[name]
    h.update(column.to_numpy().tobytes() if column.dtype.is_numeric() else "|".join(map(str, column)).encode())
print(config.CPU_FEATURES is not None, h.hexdigest())
"""


@pytest.mark.slow
def test_results_do_not_depend_on_the_vector_width(tmp_path):
    """The same Monte Carlo run compiled with 256-bit and with the default vector width (512-bit on
    AVX-512 hosts), each in a fresh process with its own empty Numba cache: identical tables.
    Elsewhere both would be 256-bit, so the test is skipped."""
    if "+avx512f" not in codegen.get_host_cpu_features().split(","):
        pytest.skip("the host has no AVX-512: both builds would use 256-bit vectors")
    outputs = []
    for width in ("256", "default"):
        env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / width), "CITYRANK_VECTOR_WIDTH": width}
        done = subprocess.run([sys.executable, "-c", _RUN], env=env, capture_output=True, text=True, check=True)
        outputs.append(done.stdout.split())
    assert outputs[0][0] == "False"
    assert outputs[1][0] == "True"  # the comparison is between two widths on this host
    assert outputs[0][1] == outputs[1][1]


# --- the cache folder keyed on the kernel sources (a kernel's cache is never loaded stale) ----------------

def test_the_cache_folder_is_named_after_the_kernel_sources(monkeypatch, tmp_path):
    from engine.kernels import _jit, rank

    assert Path(config.CACHE_DIR).name == f"cityrank-{_jit.kernel_source_digest()}"
    if not config.DISABLE_JIT:  # NUMBA_DISABLE_JIT=1 (.ci/run): kernels are plain functions
        assert str(rank.rank_desc._cache._cache_path).startswith(config.CACHE_DIR)
    monkeypatch.setattr(config, "CACHE_DIR", config.CACHE_DIR)  # restored after the test
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path))
    assert _jit.keyed_cache_dir() == tmp_path / f"cityrank-{_jit.kernel_source_digest()}"
    assert config.CACHE_DIR == str(tmp_path / f"cityrank-{_jit.kernel_source_digest()}")


def test_any_change_to_a_kernel_source_changes_the_folder(monkeypatch, tmp_path):
    from engine.kernels import _jit

    files = [tmp_path / "a.py", tmp_path / "b.py"]
    for path in files:
        path.write_text("x = 1\n")
    monkeypatch.setattr(_jit, "kernel_sources", lambda: files)
    before = _jit.kernel_source_digest()
    files[1].write_text("x = 2\n")  # e.g. a helper inlined from another file than the kernel's
    assert _jit.kernel_source_digest() != before


def test_the_digest_covers_every_engine_module_the_kernels_import():
    from engine.kernels import _jit

    hashed = {path.resolve() for path in _jit.kernel_sources()}
    engine_dir = Path(_jit.__file__).parents[1]
    for path in (engine_dir / "kernels").glob("*.py"):
        for module in re.findall(r"^\s*from \.\.(\w+)", path.read_text(encoding="utf-8"), re.MULTILINE):
            assert (engine_dir / f"{module}.py").resolve() in hashed, (path.name, module)
