"""Issue 15 item 2: impossible method combinations are refused when the spec is resolved, and any
replicate that leaves a rank missing is reported (MissingRankWarning, on the console one line)."""

from __future__ import annotations

import json

import pytest

from engine import MissingRankWarning
from engine.analysis.bootstrap import bootstrap
from engine.analysis.sensitivity import sensitivity
from engine.analysis.uncertainty import uncertainty
from engine.cli import main
from engine.errors import SchemaError
from engine.schema import framework_from_dict
from tests.analysis.conftest import city_data, city_framework

#: The issue's spec: three normalisations, arithmetic or geometric dimensions.
ISSUE_SPEC = {"normalisation": {"choices": ["minmax", "zscore", "rank"]},
              "aggregation": [{"depth": 1, "choices": ["arithmetic", "geometric"]}]}


@pytest.fixture(scope="module")
def mini():
    return framework_from_dict(city_framework()), city_data(n_units=40)


@pytest.fixture(scope="module")
def sparse():
    """Coverage 0.6 (both indicators of a sub-dimension needed) and 10 % missing cells: with the
    exclusion factor some replicates leave units unscored."""
    return framework_from_dict(city_framework(defaults={"min_coverage": 0.6})), city_data(n_units=30, missing=0.1)


# ----------------------------------------------------------------------------- refusal up front

@pytest.mark.parametrize(("spec", "match", "node"), [
    (ISSUE_SPEC, r"the uncertainty alternatives normalisation 'zscore', aggregation:depth1 'geometric' cannot be "
                 r"combined: geometric aggregation needs non-negative inputs, but child\(ren\) 'S1', 'S2' can be "
                 r"negative", "D1"),
    ({"aggregation": [{"depth": 2, "choices": ["arithmetic", "copeland"]},
                      {"depth": 1, "choices": ["arithmetic", "harmonic"]}]},
     r"aggregation:depth2 'copeland', aggregation:depth1 'harmonic' cannot be combined", "D1"),
    ({"normalisation": {"choices": [{"method": "minmax", "range": [-1, 1]}]},
      "aggregation": [{"nodes": ["Index"], "choices": [{"method": "generalised", "p": -1}]}]},
     r"normalisation 'minmax', aggregation:Index 'generalised' cannot be combined", "Index"),
])
def test_impossible_combinations_are_refused_before_any_replicate(mini, spec, match, node):
    framework, data = mini
    with pytest.raises(SchemaError, match=match) as info:
        uncertainty(framework, data, spec, replicates=64, seed=1, block_size=64)
    assert info.value.node == node
    assert "remove one of them from its `choices`" in info.value.fix


def test_the_message_names_only_the_alternatives_that_clash(mini):
    """A normalisation choice that plays no part (rank) is not named; the copeland rule below is."""
    framework, data = mini
    spec = {"normalisation": {"choices": ["rank", "minmax"]},
            "aggregation": [{"depth": 2, "choices": ["arithmetic", "copeland"]},
                            {"nodes": ["Index"], "choices": ["arithmetic"]},
                            {"nodes": ["D1"], "choices": ["arithmetic", "geometric"]}]}
    with pytest.raises(SchemaError, match=r"^node 'D1': the uncertainty alternatives aggregation:depth2 'copeland', "
                                          r"aggregation:D1 'geometric' cannot be combined"):
        uncertainty(framework, data, spec, replicates=64, seed=1, block_size=64)


def test_the_frameworks_own_zscore_under_a_geometric_choice_is_refused():
    framework = framework_from_dict(city_framework(defaults={"normalisation": {"method": "zscore"}}))
    with pytest.raises(SchemaError, match=r"alternatives aggregation:depth1 'geometric' cannot be combined"):
        uncertainty(framework, city_data(n_units=40), {"aggregation": [{"depth": 1, "choices": ["geometric"]}]},
                    replicates=64, seed=1, block_size=64)


def test_sensitivity_and_bootstrap_perturbations_are_refused_too(mini):
    framework, data = mini
    with pytest.raises(SchemaError, match="'zscore', aggregation:depth1 'geometric' cannot be combined"):
        sensitivity(framework, data, ISSUE_SPEC, base_samples=8, seed=1)
    with pytest.raises(SchemaError, match="'zscore', aggregation:depth1 'geometric' cannot be combined"):
        bootstrap(framework, data, {"mode": "units", "perturb": ISSUE_SPEC}, replicates=64, seed=1, block_size=64)


def test_possible_combinations_run_without_a_missing_rank(mini):
    """minmax [0, 100] and rank feed geometric means fine; geometric over copeland never meets when
    one rule varies a node together with its children (the check is on the combinations that occur)."""
    framework, data = mini
    spec = {"normalisation": {"choices": ["minmax", "rank"]},
            "aggregation": [{"depth": 1, "choices": ["arithmetic", "geometric"]},
                            {"nodes": ["D2", "S3"], "choices": ["geometric", "copeland"]}]}
    run = uncertainty(framework, data, spec, replicates=1024, seed=1, block_size=1024)  # no warning (= error here)
    assert run.manifest["missing_ranks"] == {"Index": 0}


# ----------------------------------------------------------------------------- the warning

def test_uncertainty_warns_with_the_count_and_share(sparse):
    framework, data = sparse
    with pytest.warns(MissingRankWarning, match=r"^uncertainty: ([\d,]+) of 30,720 ranks of 'Index' are missing "
                                                r"\(\d+\.\d%\): the unit got no score in those replicates; "
                                                r"13 unit\(s\) have no nominal rank either; most often c\d+ "
                                                r"\(100\.0%\)") as record:
        run = uncertainty(framework, data, {"exclusion": True}, replicates=1024, seed=1, block_size=1024)
    count = run.manifest["missing_ranks"]["Index"]
    assert count > 0 and f"{count:,} of 30,720" in str(record[0].message)
    assert f"({count / 30720:.1%})" in str(record[0].message)
    assert round(run.units["p_missing"].sum() * 1024) == count  # the same count, from the units table


def test_sensitivity_records_and_warns_missing_ranks(sparse):
    framework, data = sparse
    with pytest.warns(MissingRankWarning, match=r"^sensitivity: [\d,]+ of [\d,]+ ranks of 'Index' are missing") as rec:
        result = sensitivity(framework, data, {"exclusion": True}, base_samples=16, seed=1, n_boot=10)
    count = result.manifest["missing_ranks"]["Index"]
    evaluations = result.manifest["evaluations"]
    assert count > 0 and f"{count:,} of {evaluations * 30:,} ranks" in str(rec[0].message)


def test_bootstrap_warns_missing_ranks(sparse):
    framework, data = sparse
    with pytest.warns(MissingRankWarning, match=r"^bootstrap: [\d,]+ of 7,680 ranks of 'Index' are missing") as rec:
        run = bootstrap(framework, data, {"mode": "units", "perturb": {"exclusion": True}}, replicates=256, seed=1,
                        block_size=64)
    assert f"{run.manifest['missing_ranks']['Index']:,} of 7,680" in str(rec[0].message)


def test_cli_prints_the_warning_as_one_line(sparse, tmp_path, capsys):
    framework, data = sparse
    (tmp_path / "fw.json").write_text(json.dumps(dict(framework.document)), encoding="utf-8")
    data.write_csv(tmp_path / "data.csv")
    (tmp_path / "spec.json").write_text(json.dumps({"exclusion": True}), encoding="utf-8")
    assert main(["uncertainty", "-f", str(tmp_path / "fw.json"), "-d", str(tmp_path / "data.csv"), "-s",
                 str(tmp_path / "spec.json"), "-n", "1024", "--seed", "1", "--block-size", "1024", "-q"]) == 0
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if "missing" in line]
    assert len(lines) == 1 and lines[0].startswith("cityrank: warning: uncertainty: ")
    assert "ranks of 'Index' are missing" in lines[0] and "MissingRankWarning" not in err


def test_cli_refuses_the_issue_spec_with_exit_2(mini, tmp_path, capsys):
    framework, data = mini
    (tmp_path / "fw.json").write_text(json.dumps(dict(framework.document)), encoding="utf-8")
    data.write_csv(tmp_path / "data.csv")
    (tmp_path / "spec.json").write_text(json.dumps(ISSUE_SPEC), encoding="utf-8")
    assert main(["uncertainty", "-f", str(tmp_path / "fw.json"), "-d", str(tmp_path / "data.csv"), "-s",
                 str(tmp_path / "spec.json"), "-n", "1024", "-q"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("cityrank: error: node 'D1': the uncertainty alternatives normalisation 'zscore'")
    assert err.count("\n") == 1
