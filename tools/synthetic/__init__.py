"""Deterministic SYNTHETIC data generators that ship with cityrank.

Every generated table says it is synthetic (a ``synthetic`` column, the dataset docs in
``engine/datasets/*.md`` and the framework's ``data.synthetic``).  AI cities for ``ai-city-2024``
are in :mod:`tools.synthetic.cities`; AI firms are in :mod:`tools.synthetic.firms`.
"""

from .cities import generate_ai_cities

__all__ = ["generate_ai_cities"]
