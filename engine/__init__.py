"""cityrank: composite-indicator rankings, exactly and fast, with their uncertainty.

Public API (everything else is internal and may change)::

    import engine
    fw = engine.load_framework("asem")           # a shipped framework, or a YAML/JSON path
    data = engine.load_data("asem", framework=fw)  # a shipped dataset, or CSV/Parquet/Arrow/Excel
    result = engine.score(fw, data)              # ScoreResult: .table (Polars), .recipe, .top()
    mc = engine.uncertainty(fw, replicates=10_000)  # UncertaintyResult: Monte Carlo rank distributions
    sobol = engine.sensitivity(fw, base_samples=256)  # SensitivityResult: Sobol indices per unit
    boot = engine.bootstrap(fw, mode="units", replicates=1_000)  # BootstrapResult: resampled ranks
    moved = engine.change(fw, {2011: d11, 2012: d12}, start=2011, end=2012)  # ChangeResult: is a rank change real?
    sets = engine.rank_confidence_sets(estimates, se)  # ConfidenceSets: which ranks the data allow
    traj = engine.score_panel(fw, panel_table, normalisation="panel")  # Trajectories: ranks per period, trends

The analyses' results share one shape: ``.units`` (per-unit Polars table), ``.manifest`` (what was
run, seed included), ``.write(path)`` and a readable ``repr`` (HTML in Jupyter).
"""

__version__ = "0.1.0"

from .audit import AuditResult, audit  # eager: importing engine.audit would otherwise shadow audit()
from .data import Dataset, load_data
from .errors import (
    BackendError,
    ConstantIndicatorWarning,
    DataError,
    DataQualityWarning,
    EngineError,
    EngineWarning,
    ImputationWarning,
    MissingRankWarning,
    SchemaError,
    TreatmentWarning,
)
from .pipeline import STAGES, ScoreResult, Stages, run_stages, score
from .resources import shipped_datasets, shipped_frameworks
from .schema import Framework, load_framework

#: The analyses, imported on first use: ``import engine`` (and every ``cityrank`` command) stays
#: quick, since the analyses pull in SciPy's statistics and the Monte Carlo modules.
_ANALYSES = {
    "uncertainty": ".analysis.uncertainty", "UncertaintyResult": ".analysis.uncertainty",
    "sensitivity": ".analysis.sensitivity", "SensitivityResult": ".analysis.sensitivity",
    "bootstrap": ".analysis.bootstrap", "BootstrapResult": ".analysis.bootstrap",
    "rank_confidence_sets": ".analysis.confidence", "ConfidenceSets": ".analysis.confidence",
    "load_panel": ".panel", "Panel": ".panel", "score_panel": ".panel", "Trajectories": ".panel",
    "change": ".analysis.change", "ChangeResult": ".analysis.change",
}


def __getattr__(name: str):
    if name in _ANALYSES:
        from importlib import import_module

        value = getattr(import_module(_ANALYSES[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'engine' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_ANALYSES})


def validate(framework, data=None, **load_kwargs):
    """Check a framework (and, if given, data against it) without scoring.

    Returns the validated :class:`Framework`; raises :class:`SchemaError`/:class:`DataError`.
    Warns as scoring would: ``AHPConsistencyWarning`` for an AHP matrix with CR >= 0.1 (naming
    the comparisons by node ids), ``DataQualityWarning`` for implausible data values.  With data,
    the stages up to normalisation run (cheap) to check what normalisation receives (e.g.
    ``fraction_of_max`` after a log treatment that made values negative).
    """
    import warnings

    from .data import prepare
    from .pipeline import as_dataset, check_names
    from .weighting import ahp

    framework = load_framework(framework)
    for agg in framework.aggregates:
        if agg.weighting.name == "ahp":
            method = agg.weighting
            ahp(method["matrix"], eigenvector=method["eigenvector"], random_index=method["random_index"],
                names=method["order"], node=agg.id)
    if data is not None:
        dataset = as_dataset(framework, data, **load_kwargs)
        check_names(framework, dataset)
        inputs = prepare(framework, dataset)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", EngineWarning)  # imputation and constant columns: scoring reports them
            run_stages(framework, inputs, up_to="normalise")  # the domain of what normalisation receives
    return framework


__all__ = [
    "STAGES",
    "AuditResult",
    "BackendError",
    "BootstrapResult",
    "ChangeResult",
    "ConfidenceSets",
    "ConstantIndicatorWarning",
    "DataError",
    "DataQualityWarning",
    "Dataset",
    "EngineError",
    "EngineWarning",
    "Framework",
    "ImputationWarning",
    "MissingRankWarning",
    "Panel",
    "SchemaError",
    "ScoreResult",
    "SensitivityResult",
    "Stages",
    "Trajectories",
    "TreatmentWarning",
    "UncertaintyResult",
    "__version__",
    "audit",
    "bootstrap",
    "change",
    "load_data",
    "load_framework",
    "load_panel",
    "rank_confidence_sets",
    "run_stages",
    "score",
    "score_panel",
    "sensitivity",
    "shipped_datasets",
    "shipped_frameworks",
    "uncertainty",
    "validate",
]
