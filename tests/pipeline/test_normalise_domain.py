"""Issue 15 item 5: a method that needs non-negative inputs is checked on the values it receives
(after denominate, impute, screen, treat and the direction), in the pipeline, in the Monte Carlo
variants and in the bootstrap's noise."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

import engine
from engine.analysis.bootstrap import bootstrap
from engine.analysis.uncertainty import uncertainty
from engine.errors import DataError, SchemaError
from engine.schema import framework_from_dict

#: Ten units, a small range and one outlier: the skew-kurtosis rule (winmax 0) takes
#: log(x - min + 0.01 range), negative for every unit since the range is below 1.
SMALL_RANGE = [0.1, 0.12, 0.11, 0.13, 0.105, 0.115, 0.125, 0.11, 0.12, 0.9]


def document(a: dict, treatment: dict | None = None) -> dict:
    """Index over ``a`` (as given) and ``b`` (minmax)."""
    return {"id": "t", "labels": {"en": "t"}, "data": {"unit": "unit"},
            "defaults": {"treatment": treatment or {"method": "skew_kurtosis", "winmax": 0}},
            "nodes": [{"id": "idx", "labels": {"en": "Index"}},
                      {"id": "a", "parent": "idx", "labels": {"en": "A"}, "column": "a", **a},
                      {"id": "b", "parent": "idx", "labels": {"en": "B"}, "column": "b",
                       "treatment": {"method": "none"}}]}


def data(a: list[float] = SMALL_RANGE) -> pl.DataFrame:
    return pl.DataFrame({"unit": [f"u{i}" for i in range(len(a))], "a": a, "b": np.arange(float(len(a)))})


def test_fraction_of_max_after_a_negative_log_treatment_is_refused():
    """The issue's case: it used to give the largest raw value (u9) the last rank and 9 of 10
    normalised values outside [0, 1]."""
    framework = framework_from_dict(document({"normalisation": {"method": "fraction_of_max"}}))
    with pytest.raises(DataError, match=r"fraction_of_max needs values >= 0 after the skew_kurtosis treatment and "
                                        r"the direction, but 10 of 10 are negative \(lowest -4\.8283") as info:
        engine.score(framework, data())
    err = info.value
    assert (err.node, err.column) == ("a", "a")
    assert err.units == [f"u{i}" for i in range(10)]
    assert "minmax" in err.fix and "treatment: {method: none}" in err.fix
    # the fix it names works: minmax keeps the order of the (treated) values
    fixed = engine.score(framework_from_dict(document({})), data()).table
    assert fixed.filter(pl.col("unit") == "u9")["a_rank"].item() == 1
    assert fixed["a"].min() == 0.0 and fixed["a"].max() == 100.0


def test_fraction_of_max_after_a_log_below_one_is_refused():
    """``log`` passes the raw check (values > 0), but log(x) < 0 for x < 1."""
    framework = framework_from_dict(document({"normalisation": {"method": "fraction_of_max"}},
                                             treatment={"method": "log"}))
    values = [0.5, 2.0, 3.0, 4.0, 0.25, 6.0, 7.0, 8.0, 9.0, 10.0]
    with pytest.raises(DataError, match=r"after the log treatment and the direction, but 2 of 10 are negative "
                                        r"\(lowest -1\.38629\) \(the log of a value below 1 is negative\)") as info:
        engine.score(framework, data(values))
    assert info.value.units == ["u0", "u4"]


def test_fraction_of_max_on_a_positive_treatment_still_runs():
    """The check is on the treated values, not on a rule about the treatment: a log that stays
    positive (0.01 range >= 1) is accepted, and x / max then keeps the order."""
    framework = framework_from_dict(document({"normalisation": {"method": "fraction_of_max"}}))
    with pytest.raises(DataError, match="9 of 10 are negative"):  # range 8: log(x - min + 0.08) < 0 near the min
        engine.score(framework, data([10 * v for v in SMALL_RANGE]))
    result = engine.score(framework, data([1000 * v for v in SMALL_RANGE]))  # range 800: every log > 0
    assert result.recipe["stages"]["treat"]["applied"]["a"]["log"] is True
    assert result.table.filter(pl.col("unit") == "u9")["a_rank"].item() == 1
    assert result.table["a"].max() == 1.0 and result.table["a"].min() > 0.0


def test_uncertainty_choice_fraction_of_max_on_treated_values_is_refused_before_any_replicate():
    """A global normalisation choice meets the treated values of every indicator; it is checked
    when the variants are built (before any replicate), naming the choice and the fix."""
    framework = framework_from_dict(document({}))
    spec = {"normalisation": {"choices": ["minmax", "fraction_of_max"]}}
    with pytest.raises(DataError, match=r"uncertainty variant \(normalisation choice 'fraction_of_max'\): "
                                        r"fraction_of_max needs values >= 0 after the skew_kurtosis") as info:
        uncertainty(framework, data(), spec, replicates=64, seed=1, block_size=64)
    assert info.value.node == "a" and len(info.value.units) == 10
    assert info.value.fix == "remove 'fraction_of_max' from normalisation.choices"


def test_uncertainty_treatment_off_variant_is_checked_on_untreated_values():
    """With the treatment switched off a variant receives the untreated values: here the treated
    ones are all > 0 (accepted) but the raw ones are not, so only ``treatment: true`` is refused."""
    framework = framework_from_dict(document({}))
    values = [1000 * v - 150 for v in SMALL_RANGE]  # raw: 9 of 10 < 0; treated: log(x - min + 8) > 0
    spec = {"normalisation": {"choices": ["minmax", "fraction_of_max"]}}
    run = uncertainty(framework, data(values), spec, replicates=64, seed=1, block_size=64)
    assert run.manifest["missing_ranks"] == {"idx": 0}
    with pytest.raises(DataError, match=r"uncertainty variant \(normalisation choice 'fraction_of_max' with the "
                                        r"treatment off\): fraction_of_max needs values >= 0 after the direction, "
                                        r"but 9 of 10 are negative \(lowest -50\)") as info:
        uncertainty(framework, data(values), {**spec, "treatment": True}, replicates=64, seed=1, block_size=64)
    assert info.value.units == [f"u{i}" for i in range(9)]


def test_bootstrap_noise_that_can_cross_zero_is_refused_for_fraction_of_max():
    framework = framework_from_dict(document({"normalisation": {"method": "fraction_of_max"}},
                                             treatment={"method": "none"}))
    spec = {"mode": "noise", "noise": {"default": {"relative": 0.1}, "truncate": False}}
    with pytest.raises(SchemaError, match=r"untruncated noise can move indicator\(s\) 'a' across 0, but "
                                          r"fraction_of_max needs values >= 0") as info:
        bootstrap(framework, data(), spec, replicates=64, seed=1, block_size=64)
    assert "minmax" in info.value.fix and "truncate: true" in info.value.fix
    spec["noise"]["truncate"] = True
    bootstrap(framework, data(), spec, replicates=64, seed=1, block_size=64)


def test_validate_checks_what_normalisation_receives(tmp_path, capsys):
    """engine.validate and `cityrank validate` refuse the issue's case too (they used to say valid)."""
    import json

    from engine.cli import main

    framework = framework_from_dict(document({"normalisation": {"method": "fraction_of_max"}}))
    with pytest.raises(DataError, match="fraction_of_max needs values >= 0 after the skew_kurtosis treatment"):
        engine.validate(framework, data())
    assert engine.validate(framework, data([1000 * v for v in SMALL_RANGE])) is framework
    (tmp_path / "fw.json").write_text(json.dumps(dict(framework.document)), encoding="utf-8")
    data().write_csv(tmp_path / "data.csv")
    assert main(["validate", "-f", str(tmp_path / "fw.json"), "-d", str(tmp_path / "data.csv")]) == 2
    assert "cityrank: error: node 'a' / column 'a': fraction_of_max needs values >= 0" in capsys.readouterr().err
