"""Shared fixtures.  No unseeded randomness at import time; nothing here reads the shared reference folder."""

from __future__ import annotations

import copy
import os

import pytest
from hypothesis import HealthCheck, settings

import engine

settings.register_profile("ci", derandomize=True, deadline=None, max_examples=60,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("dev", deadline=None, max_examples=200)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(scope="session")
def asem_framework() -> engine.Framework:
    return engine.load_framework("asem")


@pytest.fixture
def asem_document(asem_framework) -> dict:
    """A deep, mutable copy of the ASEM framework document (to derive variants from)."""
    return copy.deepcopy(dict(asem_framework.document))


@pytest.fixture(scope="session")
def asem_result(asem_framework) -> engine.ScoreResult:
    return engine.score(asem_framework)
