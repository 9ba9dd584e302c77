"""Bootstrap specification and resampling designs.

* :func:`load_bootstrap_spec`: file/dict → validated :class:`BootstrapSpec`
  (``schemas/bootstrap.schema.json``);
* :func:`compile_records`: a record-level table and the spec's derivations → the arrays of the
  kernel's weighted bincount, checked against the unit table before any work;
* :func:`sampling_draws`: the random inputs of replicates ``start .. stop − 1``, keyed by
  ``(seed, RNG block)`` with their own stream (``spawn_key=(block, 1)``), so a combined study
  draws exactly the weights of the Monte Carlo run of the same seed (``spawn_key=(block,)``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from scipy.stats import poisson

from ..errors import DataError, SchemaError, preview
from .design import RNG_BLOCK
from .spec import UncertaintySpec, load_spec, read_document

__all__ = ["BlockDraws", "BootstrapSpec", "RecordDesign", "SamplingDraws", "load_bootstrap_spec", "compile_records",
           "resample_size", "poisson_thresholds", "sampling_draws", "MODES"]

MODES = ("records", "units", "noise")
DEFAULT_BLOCK_SIZE = 1024


@dataclass(frozen=True)
class BootstrapSpec:
    """A validated bootstrap specification (see ``schemas/bootstrap.schema.json``)."""

    mode: str
    replicates: int = 10_000
    seed: int | None = None
    block_size: int = DEFAULT_BLOCK_SIZE
    records: Mapping[str, Any] | None = None
    units: Mapping[str, Any] = field(default_factory=dict)
    noise: Mapping[str, Any] | None = None
    perturb: UncertaintySpec | None = None  #: Weight/method perturbations of a combined study.
    decompose: bool = True
    confidence: Mapping[str, Any] = field(default_factory=dict)
    document: Mapping[str, Any] = field(default_factory=dict)

    def uncertainty_spec(self) -> UncertaintySpec:
        """The Monte Carlo view: targets, top-k, pairs, tiers and the perturbations (if any)."""
        keys = ("targets", "top_k", "pairs", "tiers")
        document = {k: self.document[k] for k in keys if k in self.document}
        if self.perturb is not None:
            document.update(self.perturb.document)
        return load_spec({**document, "replicates": self.replicates, "block_size": self.block_size,
                          **({"seed": self.seed} if self.seed is not None else {})})

    def to_dict(self) -> dict[str, Any]:
        return {**dict(self.document), "mode": self.mode, "replicates": self.replicates, "seed": self.seed,
                "block_size": self.block_size}


def load_bootstrap_spec(source: str | Path | Mapping[str, Any] | BootstrapSpec | None, **overrides: Any
                        ) -> BootstrapSpec:
    """Load and validate a bootstrap specification; ``overrides`` (``mode``, ``replicates``,
    ``seed``, ``block_size`` from the command line) replace the file's values when not None."""
    document = read_document(source.document if isinstance(source, BootstrapSpec) else source, "bootstrap",
                             overrides)
    mode = document.get("mode")
    if mode is None:
        raise SchemaError("the bootstrap specification gives no mode", fix="set mode: records, units or noise "
                          "(or pass --mode)")
    if mode == "records" and not document.get("records"):
        raise SchemaError("mode records needs a `records` section saying how indicators are computed from the records",
                          fix="add records: {indicators: {firm_count: {stat: count}, …}} (see docs/bootstrap.md)")
    if mode == "noise" and not document.get("noise"):
        raise SchemaError("mode noise needs a `noise` section with the measurement error of the indicators",
                          fix="add noise: {default: {relative: 0.05}} or per-indicator errors")
    for name, rule in document.get("records", {}).get("indicators", {}).items():
        if rule["stat"] in ("sum", "mean") and "column" not in rule:
            raise SchemaError(f"records derivation of {name!r} ({rule['stat']}) needs a `column`",
                              node=name, fix=f"write {{stat: {rule['stat']}, column: <records column>}}")
        if rule["stat"] == "count" and "column" in rule:
            raise SchemaError(f"records derivation of {name!r}: a count takes no `column`", node=name,
                              fix="filter the records with `where: {column: …, in: […]}` instead")
    perturb = None
    if document.get("perturb"):
        perturb = load_spec(document["perturb"])
        if perturb.treatment:
            raise SchemaError("a bootstrap cannot switch the treatment on and off", fix="remove perturb.treatment")
        extra = sorted(set(document["perturb"]) - {"weights", "normalisation", "aggregation", "exclusion"})
        if extra:
            raise SchemaError(f"perturb takes weights, normalisation, aggregation and exclusion, not {extra}",
                              fix="set targets, top_k, pairs, tiers, replicates and seed at the top level")
    block_size = int(document.get("block_size", DEFAULT_BLOCK_SIZE))
    if block_size % RNG_BLOCK and RNG_BLOCK % block_size:
        raise SchemaError(f"block_size {block_size} must be a multiple or a divisor of {RNG_BLOCK}",
                          fix="use e.g. 1024 (the default), 4096, or 64 for tiny runs")
    decompose = bool(document.get("decompose", True)) and perturb is not None
    if decompose and block_size < 2:
        raise SchemaError("the variance decomposition pairs replicates: block_size must be at least 2",
                          fix="use block_size 1024 or set decompose: false")
    return BootstrapSpec(
        mode=mode, replicates=int(document.get("replicates", 10_000)), seed=document.get("seed"),
        block_size=block_size, records=document.get("records"), units=document.get("units", {}),
        noise=document.get("noise"), perturb=perturb, decompose=decompose,
        confidence=document.get("confidence", {}), document=document)


def resample_size(rule: int | str | None, n: int, what: str) -> int:
    """m of an m-out-of-n bootstrap: an integer, a rule ``"n^a"`` (rounded, at least 2), or n."""
    if rule is None:
        return n
    if isinstance(rule, str):
        match = re.fullmatch(r"n\^([0-9.]+)", rule)
        if match is None:
            raise SchemaError(f"{what}.m rule {rule!r} is not of the form n^a", fix='write e.g. "n^0.7" or an integer')
        return max(2, round(n ** float(match.group(1))))
    return int(rule)


def poisson_thresholds(rate: float) -> np.ndarray:
    """``⌊P(W ≤ k)·2³²⌋`` for W ~ Poisson(rate), k = 0, 1, … while below 2³²: a uniform 32-bit
    integer u gives the weight ``#{k : u ≥ thresholds[k]}`` (exact inversion up to 2⁻³²)."""
    out = []
    k = 0
    while True:
        t = math.floor(poisson.cdf(k, rate) * 2.0**32)
        if t >= 2**32 or (out and t == out[-1]):  # the rest of the tail is below 2⁻³²
            break
        out.append(t)
        k += 1
    return np.array(out, np.int64)


@dataclass(frozen=True)
class RecordDesign:
    """Arrays of the kernel's weighted bincount (see :mod:`engine.kernels.bootstrap`)."""

    unit: np.ndarray  #: int64 (n_records,): row of the record's unit, −1 = unit screened out.
    values: np.ndarray  #: float64 (n_records, n_columns): 0/1 filters and filtered values.
    derived: np.ndarray  #: int64 (n_derived,): indicator column of each derived indicator.
    numerator: np.ndarray  #: int64 (n_derived,)
    denominator: np.ndarray  #: int64 (n_derived,), −1 = none.
    divisor: np.ndarray  #: float64 (n_units, n_derived): denominator ÷ scale factor (1 without).
    rate: float  #: Poisson rate λ = m / n_records.
    thresholds: np.ndarray  #: int64: Poisson(λ) CDF thresholds.
    ignored: int  #: Records of units removed by screening.

    @property
    def n_records(self) -> int:
        return self.unit.shape[0]


def _filter(records: pl.DataFrame, rule: Mapping[str, Any], name: str) -> np.ndarray:
    where = rule.get("where")
    if where is None:
        return np.ones(records.height)
    column = where["column"]
    if column not in records.columns:
        raise DataError(f"records derivation of {name!r} filters on column {column!r}, which the records lack",
                        column=column, fix=f"use one of {preview(records.columns, 8)}")
    series = records[column]
    wanted = list(where["in"])
    if series.dtype == pl.String:
        wanted = [str(v) for v in wanted]
    return series.is_in(wanted).fill_null(False).to_numpy().astype(np.float64)


def _values(records: pl.DataFrame, column: str, name: str) -> np.ndarray:
    if column not in records.columns:
        raise DataError(f"records derivation of {name!r} uses column {column!r}, which the records lack",
                        column=column, fix=f"use one of {preview(records.columns, 8)}")
    series = records[column]
    if not series.dtype.is_numeric() and series.dtype != pl.Boolean:
        raise DataError(f"records column {column!r} ({series.dtype}) is not numeric", column=column,
                        fix="give a numeric column for sum and mean")
    values = series.cast(pl.Float64).to_numpy()
    bad = np.flatnonzero(~np.isfinite(values))
    if len(bad):
        raise DataError(f"records column {column!r} has {len(bad)} missing or non-finite value(s), e.g. in rows "
                        f"{preview(bad.tolist())}", column=column,
                        fix="fill them, or drop those records before the bootstrap")
    return values


def compile_records(records: pl.DataFrame, rule: Mapping[str, Any], result, units: list[Any], unit_column: str,
                    *, check: bool = True) -> RecordDesign:
    """The weighted-bincount arrays of a record-level table.

    ``rule`` is the spec's ``records`` section; ``result`` the nominal :class:`ScoreResult`;
    ``units`` its kept unit ids (rows of every array).  Raises, before any replicate runs, when
    a derived indicator is not in the framework or is treated, a column is missing or not
    numeric, a record names a unit that is not in the data, or (``check``) a derived indicator
    recomputed from all records differs from the unit table (tolerance 1e-4 absolute + 1e-6
    relative, the unit table's rounding)."""
    framework = result.framework
    stages = result.stages
    column_of = {ind.id: k for k, ind in enumerate(framework.indicators)}
    unit_column = rule.get("unit", unit_column)
    if unit_column not in records.columns:
        raise DataError(f"the records have no unit column {unit_column!r}", column=unit_column,
                        fix=f"set records.unit to one of {preview(records.columns, 8)}")
    if records.height == 0:
        raise DataError("the records table is empty", fix="give the record-level table (one row per record)")
    names = records[unit_column]
    if names.null_count():
        rows = np.flatnonzero(names.is_null().to_numpy())
        raise DataError(f"{len(rows)} record(s) have no unit, e.g. rows {preview(rows.tolist())}",
                        column=unit_column, fix="fill the unit column or drop those records")
    kept_rows = {str(u): i for i, u in enumerate(units)}
    all_units = {str(u) for u in stages.inputs.units.to_list()}
    keys = names.cast(pl.String).to_list()
    unknown = sorted({k for k in keys if k not in all_units})
    if unknown:
        raise DataError(f"records name {len(unknown)} unit(s) that are not in the data: {preview(unknown)}",
                        column=unit_column, units=unknown, fix="add them to the unit table or drop their records")
    unit = np.array([kept_rows.get(k, -1) for k in keys], np.int64)

    columns: dict[tuple, int] = {}
    value_columns: list[np.ndarray] = []

    def column(key: tuple, make) -> int:
        if key not in columns:
            columns[key] = len(value_columns)
            value_columns.append(make())
        return columns[key]

    derived, numerator, denominator = [], [], []
    for name, spec in rule["indicators"].items():
        if name not in column_of:
            raise SchemaError("records derivation names an indicator the framework does not have", node=name,
                              fix=f"use indicator ids such as {preview([i.id for i in framework.indicators][:3])}")
        ind = framework.indicators[column_of[name]]
        if ind.treatment.name != "none":
            raise SchemaError(f"record-derived indicator {name!r} has outlier treatment {ind.treatment.name!r}, "
                              "which the bootstrap does not refit per replicate", node=name,
                              fix="set treatment: {method: none} for it in the framework")
        where = spec.get("where")
        where_key = (where["column"], tuple(map(str, where["in"]))) if where else None
        filt = _filter(records, spec, name)
        f = column(("filter", where_key), lambda: filt)  # noqa: B023 (column() calls it at once)
        if spec["stat"] == "count":
            num, den = f, -1
        else:
            values = _values(records, spec["column"], name)
            num = column(("value", spec["column"], where_key), lambda: values * filt)  # noqa: B023 (called at once)
            den = f if spec["stat"] == "mean" else -1
        derived.append(column_of[name])
        numerator.append(num)
        denominator.append(den)
    derived_arr = np.array(derived, np.int64)
    scale = np.array([framework.indicators[j].scale_factor for j in derived], np.float64)
    divisor = np.ascontiguousarray(stages.inputs.denominators[stages.kept][:, derived_arr] / scale)
    n_records = records.height
    m = resample_size(rule.get("m"), n_records, "records")
    rate = m / n_records
    design = RecordDesign(
        unit=unit, values=np.ascontiguousarray(np.stack(value_columns, axis=1)),
        derived=derived_arr,
        numerator=np.array(numerator, np.int64), denominator=np.array(denominator, np.int64),
        divisor=divisor, rate=rate, thresholds=poisson_thresholds(rate), ignored=int((unit < 0).sum()))
    if check:
        _check_nominal(design, stages, framework, units)
    return design


def nominal_derived(design: RecordDesign, n_units: int) -> np.ndarray:
    """Derived indicators (n_units, n_derived) from all records with weight 1 (undirected,
    denominated)."""
    sums = np.zeros((n_units, design.values.shape[1]))
    mask = design.unit >= 0
    for c in range(design.values.shape[1]):
        sums[:, c] = np.bincount(design.unit[mask], weights=design.values[mask, c], minlength=n_units)
    num = sums[:, design.numerator]
    den = np.where(design.denominator[None, :] >= 0, sums[:, np.maximum(design.denominator, 0)], 1.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        values = np.where(den > 0, num / den, np.nan)
    return values / design.divisor


def _check_nominal(design: RecordDesign, stages, framework, units: list[Any]) -> None:
    expected = stages.denominated[stages.kept][:, design.derived]
    got = nominal_derived(design, len(units))
    both = np.isfinite(expected) & np.isfinite(got)
    close = np.isclose(got, expected, rtol=1e-6, atol=1e-4) | (np.isnan(got) & np.isnan(expected))
    bad = np.argwhere(~close | (np.isfinite(expected) != np.isfinite(got)))
    if len(bad):
        i, d = bad[0]
        ind = framework.indicators[design.derived[d]]
        raise DataError(f"indicator {ind.id!r} of unit {units[i]!r} is {float(expected[i, d])!r} in the unit table "
                        f"but {float(got[i, d])!r} from the records ({len(bad)} mismatch(es) in all; "
                        f"{int(both.sum())} values compared)", node=ind.id, column=ind.column, units=[units[i]],
                        fix="the unit table must be the records aggregated as the records section says: check "
                            "the derivation (stat, column, where), the unit column and the records file")


@dataclass(frozen=True)
class SamplingDraws:
    """Random inputs of a range of replicates (rows = replicates); unused sources have width 0."""

    record_uniform: np.ndarray  #: uint32 (n, n_records)
    count: np.ndarray  #: float64 (n, n_units): unit multiplicities
    noise_eps: np.ndarray  #: float64 (n, n_units, n_noisy)

    def take(self, index: np.ndarray) -> SamplingDraws:
        return SamplingDraws(self.record_uniform[index], self.count[index], self.noise_eps[index])


class BlockDraws:
    """The draws of one RNG block (``SeedSequence(seed, spawn_key=(block, 1))``), taken a few
    replicates at a time: NumPy's generators give the same numbers in consecutive calls as in one
    (tested), so :meth:`take` returns the block's next rows of :func:`sampling_draws` without ever
    holding the block's RNG_BLOCK × units arrays (0.8–1.6 GB at 10⁵ units in mode units)."""

    def __init__(self, seed: int, block: int, mode: str, *, n_records: int = 0, n_units: int, m_units: int = 0,
                 n_noisy: int = 0) -> None:
        self.rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=(block, 1))))
        self.mode, self.n_records, self.n_units, self.m_units, self.n_noisy = mode, n_records, n_units, m_units, n_noisy

    def rows(self, n: int) -> np.ndarray:
        """The raw draws of the next ``n`` replicates: record uniforms, unit multiplicities or normals."""
        if self.mode == "records":
            return self.rng.integers(0, 2**32, size=(n, self.n_records), dtype=np.uint32)
        if self.mode == "units":
            drawn = self.rng.integers(0, self.n_units, size=(n, self.m_units))
            counts = np.empty((n, self.n_units))
            for r in range(n):  # row by row: no (n × n_units) int64 temporaries (1.6 GB for a block at 10^5 units)
                counts[r] = np.bincount(drawn[r], minlength=self.n_units)
            return counts
        return self.rng.standard_normal((n, self.n_units, self.n_noisy))

    def take(self, n: int) -> SamplingDraws:
        """:class:`SamplingDraws` of the block's next ``n`` replicates."""
        return _as_draws(self.rows(n), self.mode, n, self.n_units)


def _block_draws(seed: int, block: int, mode: str, n_records: int, n_units: int, m_units: int, n_noisy: int):
    return BlockDraws(seed, block, mode, n_records=n_records, n_units=n_units, m_units=m_units,
                      n_noisy=n_noisy).rows(RNG_BLOCK)


def _as_draws(rows: np.ndarray, mode: str, n: int, n_units: int) -> SamplingDraws:
    return SamplingDraws(
        record_uniform=np.ascontiguousarray(rows) if mode == "records" else np.zeros((n, 0), np.uint32),
        count=np.ascontiguousarray(rows) if mode == "units" else np.zeros((n, 0)),
        noise_eps=np.ascontiguousarray(rows) if mode == "noise" else np.zeros((n, n_units, 0)),
    )


def sampling_draws(seed: int, start: int, stop: int, mode: str, *, n_records: int = 0, n_units: int,
                   m_units: int = 0, n_noisy: int = 0) -> SamplingDraws:
    """Draws of replicates ``start .. stop − 1``: each a pure function of (seed, replicate)."""
    first, last = start // RNG_BLOCK, (stop - 1) // RNG_BLOCK
    blocks = np.concatenate([_block_draws(seed, b, mode, n_records, n_units, m_units, n_noisy)
                             for b in range(first, last + 1)])
    rows = blocks[start - first * RNG_BLOCK: stop - first * RNG_BLOCK]
    return _as_draws(rows, mode, stop - start, n_units)
