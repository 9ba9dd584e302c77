"""The method registry (engine.methods) is the one home of method names, codes, parameters and
defaults: the JSON schema's enums, the schema module's defaults and parameter checks, the stages'
kernels and the kernels' code constants all agree with it."""

from __future__ import annotations

import pytest

from engine import methods, schema
from engine.kernels import aggregate as aggregate_kernels
from engine.kernels import reference
from engine.resources import load_schema
from engine.stages.normalise import NORMALISERS


def _enum(family: str) -> list[str]:
    return load_schema("framework")["$defs"][family]["properties"]["method"]["enum"]


@pytest.mark.parametrize("family", sorted(methods.FAMILIES))
def test_schema_enums_are_the_registry_names(family):
    assert list(methods.names(methods.FAMILIES[family])) == _enum(family)


@pytest.mark.parametrize("family", sorted(methods.FAMILIES))
def test_codes_are_positions_in_schema_order(family):
    assert list(methods.codes(methods.FAMILIES[family]).values()) == list(range(len(_enum(family))))


def test_schema_defaults_and_parameter_checks_come_from_the_registry():
    assert schema.NORMALISATION_DEFAULTS == {"minmax": {"range": [0.0, 100.0]}, "zscore": {"mean": 0.0, "sd": 1.0},
                                             "rank": {"ties": "min"}, "borda": {}, "percentile": {"scale": 1.0},
                                             "fraction_of_max": {"scale": 1.0}, "distance_to_max": {"scale": 1.0},
                                             "distance_to_target": {"scale": 1.0, "cap": True},
                                             "goalposts": {"scale": 1.0}, "exponential": {"c": 23.0}}
    assert schema.TREATMENT_DEFAULTS["skew_kurtosis"] == {"winmax": 5, "skew_threshold": 2.0,
                                                          "kurtosis_threshold": 3.5}
    assert schema.STAGE_PARAMETERS == {"imputation": {"group_mean": {"group"}, "group_median": {"group"}},
                                       "treatment": {"skew_kurtosis": {"winmax", "skew_threshold",
                                                                       "kurtosis_threshold"}},
                                       "aggregation": {"generalised": {"p"}}}
    assert schema.AGGREGATION_CODES == methods.codes(methods.AGGREGATION)
    # a fresh copy per call: resolving a framework cannot change the registry's defaults
    fresh = methods.defaults(methods.NORMALISATION)
    fresh["minmax"]["range"][1] = 1.0
    assert methods.NORMALISATION["minmax"].defaults["range"] == [0.0, 100.0]


@pytest.mark.parametrize("family", ["normalisation", "aggregation"])
def test_kernel_methods_resolve_to_the_kernel_and_twin_of_their_name(family):
    for name, method in methods.FAMILIES[family].items():
        assert method.kernel.__name__ == name
        assert method.twin is getattr(reference, name)


def test_stage_normalisers_are_the_registry_in_code_order():
    assert list(NORMALISERS) == list(methods.NORMALISATION)
    for name, entry in NORMALISERS.items():
        assert entry.kernel is methods.NORMALISATION[name].kernel
        assert entry.reference is methods.NORMALISATION[name].twin


def test_aggregation_dispatch_follows_the_named_constants():
    """aggregate_node switches on the registry's constants: each code runs the kernel of its name."""
    import numpy as np

    block = np.array([[1.0, 4.0], [2.0, 2.0], [0.0, 3.0]])
    weights = np.array([0.25, 0.75])
    for name, method in methods.AGGREGATION.items():
        p = -1.0 if name == "generalised" else 1.0
        out = aggregate_kernels.aggregate_node(block, weights, method.code, p, 0.0, np.empty(3))
        args = (block, weights, p, 0.0) if name == "generalised" else (block, weights, 0.0)
        np.testing.assert_array_equal(out, method.twin(*args), err_msg=name)


def test_a_method_without_a_kernel_says_so():
    with pytest.raises(LookupError, match="treatment method 'log' has no kernel"):
        _ = methods.TREATMENT["log"].kernel
