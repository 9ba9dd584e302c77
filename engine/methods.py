"""The method registry: every stage method's name, kernel code, kernel, twin, parameters and defaults.

One home for what used to be spread over the schema, the stages, the kernels and the tests:

* the schema's enums (``schemas/framework.schema.json``, checked equal by a test) and its parameter
  defaults and checks (:mod:`engine.schema` derives ``NORMALISATION_DEFAULTS`` … from here);
* the kernels' integer codes, as named constants (``MINMAX`` … ``GOALPOSTS``, ``ARITHMETIC`` …
  ``COPELAND``): Numba freezes module globals, so kernels import these plain ints;
* the stages' kernel and twin of each method, resolved by name (``engine.kernels.<module>.<name>``
  and ``engine.kernels.reference.<name>``) when first asked for, so importing the registry does
  not import Numba;
* the tests' strategies (``tests/strategies.py`` draws codes from here).

A method's code is its position in its family, in the schema's order.
"""

from __future__ import annotations

import copy
import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

__all__ = [
    "AGGREGATION",
    "ARITHMETIC",
    "BORDA",
    "COPELAND",
    "DISTANCE_TO_MAX",
    "DISTANCE_TO_TARGET",
    "EXPONENTIAL",
    "FAMILIES",
    "FRACTION_OF_MAX",
    "GENERALISED",
    "GEOMETRIC",
    "GOALPOSTS",
    "HARMONIC",
    "IMPUTATION",
    "MINMAX",
    "NORMALISATION",
    "PERCENTILE",
    "RANK",
    "TIES",
    "TREATMENT",
    "WEIGHTING",
    "ZSCORE",
    "Method",
    "codes",
    "defaults",
    "names",
]


@dataclass(frozen=True)
class Method:
    """One registered method of a stage.

    ``defaults`` are the optional parameters and their values; ``required`` the parameters a
    framework must give (no default).  ``kernel_module`` names the module of
    :mod:`engine.kernels` holding the Numba kernel of the same name (``None``: computed in Python
    by its stage)."""

    family: str
    name: str
    code: int
    defaults: Mapping[str, Any] = field(default_factory=dict)
    required: frozenset[str] = frozenset()
    kernel_module: str | None = None

    @property
    def parameters(self) -> frozenset[str]:
        """Every parameter the method takes."""
        return frozenset(self.defaults) | self.required

    @property
    def kernel(self) -> Callable:
        """The Numba kernel ``engine.kernels.<kernel_module>.<name>``."""
        if self.kernel_module is None:
            raise LookupError(f"{self.family} method {self.name!r} has no kernel")
        return getattr(importlib.import_module(f"engine.kernels.{self.kernel_module}"), self.name)

    @property
    def twin(self) -> Callable:
        """The readable twin ``engine.kernels.reference.<name>``."""
        if self.kernel_module is None:
            raise LookupError(f"{self.family} method {self.name!r} has no kernel twin")
        return getattr(importlib.import_module("engine.kernels.reference"), self.name)


def _family(family: str, kernel_module: str | None, entries) -> Mapping[str, Method]:
    """A family in schema order: ``entries`` are (name, defaults[, required]) tuples."""
    methods = {}
    for code, (name, params, *required) in enumerate(entries):
        methods[name] = Method(family, name, code, MappingProxyType(dict(params)),
                               frozenset(required[0] if required else ()), kernel_module)
    return MappingProxyType(methods)


NORMALISATION = _family("normalisation", "normalise", [
    ("minmax", {"range": [0.0, 100.0]}),
    ("zscore", {"mean": 0.0, "sd": 1.0}),
    ("rank", {"ties": "min"}),
    ("borda", {}),
    ("percentile", {"scale": 1.0}),
    ("fraction_of_max", {"scale": 1.0}),
    ("distance_to_max", {"scale": 1.0}),
    ("distance_to_target", {"scale": 1.0, "cap": True}, {"target"}),
    ("goalposts", {"scale": 1.0}, {"goalposts"}),
    ("exponential", {"c": 23.0}),
])
AGGREGATION = _family("aggregation", "aggregate", [
    ("arithmetic", {}),
    ("geometric", {}),
    ("harmonic", {}),
    ("generalised", {}, {"p"}),
    ("copeland", {}),
])
TREATMENT = _family("treatment", None, [
    ("none", {}),
    ("log", {}),
    ("skew_kurtosis", {"winmax": 5, "skew_threshold": 2.0, "kurtosis_threshold": 3.5}),
])
IMPUTATION = _family("imputation", None, [
    ("none", {}), ("mean", {}), ("median", {}), ("group_mean", {}, {"group"}), ("group_median", {}, {"group"}),
    ("locf", {}), ("interpolate", {}),  # the unit's own series: panel data only (engine.panel)
])
WEIGHTING = _family("weighting", None, [
    ("manual", {}), ("equal", {}), ("ahp", {}), ("entropy", {}), ("critic", {}), ("pca", {}),
])
#: Every family by its schema key.
FAMILIES: Mapping[str, Mapping[str, Method]] = MappingProxyType({
    "normalisation": NORMALISATION, "aggregation": AGGREGATION, "treatment": TREATMENT,
    "imputation": IMPUTATION, "weighting": WEIGHTING,
})


def names(family: Mapping[str, Method]) -> tuple[str, ...]:
    """Method names of a family, in code order (the schema's enum)."""
    return tuple(family)


def codes(family: Mapping[str, Method]) -> dict[str, int]:
    """name → kernel code."""
    return {name: m.code for name, m in family.items()}


def defaults(family: Mapping[str, Method]) -> dict[str, dict[str, Any]]:
    """name → a fresh dict of parameter defaults (the shape ``engine.schema`` resolves against)."""
    return {name: copy.deepcopy(dict(m.defaults)) for name, m in family.items()}


# Kernel codes as named constants (plain ints: Numba freezes them into the kernels).
(MINMAX, ZSCORE, RANK, BORDA, PERCENTILE, FRACTION_OF_MAX, DISTANCE_TO_MAX, DISTANCE_TO_TARGET, GOALPOSTS,
 EXPONENTIAL) = (NORMALISATION[n].code for n in ("minmax", "zscore", "rank", "borda", "percentile", "fraction_of_max",
                                                  "distance_to_max", "distance_to_target", "goalposts", "exponential"))
#: Codes of the ``ties`` parameter of ``rank`` (the kernels receive them as floats).
TIES = MappingProxyType({"min": 0.0, "average": 1.0})
ARITHMETIC, GEOMETRIC, HARMONIC, GENERALISED, COPELAND = (
    AGGREGATION[n].code for n in ("arithmetic", "geometric", "harmonic", "generalised", "copeland"))
