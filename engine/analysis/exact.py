"""Exact sums of float64 arrays: the same result however the values are grouped or ordered.

A run's score moments are per-RNG-block float sums (each a fixed sequence of additions inside
the kernel); adding those up in floating point would make the total depend on the order in
which blocks are merged, so a run would have to keep every block's sums until the end
(units × replicates / 1024 floats).  :class:`ExactSum` instead adds each block's sums without
rounding, into a fixed-point integer accumulator, so states merge in any order and grouping
(threads, chunks, Dask's merges on the workers, a resume) and take constant memory; the total is
rounded once, correctly, when it is read.

Representation: every finite double is ``±M · 2**E`` with an integer ``M < 2**53`` and
``E ≥ −1126``; the sum is kept as ``Σ_k limb_k · 2**(32 k − 1126)`` with int64 limbs, all in
``[0, 2**32)`` except the last (signed: it carries the sign and the overflow).  Non-finite values
(±inf, NaN) are added in floating point to a separate ``special`` array, whose result does not
depend on the order either (any NaN or +inf with −inf → NaN, else the infinity).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["ExactSum", "add_sums"]

LIMB_BITS = 32
#: 68 limbs of 32 bits cover every double (bits 0 … 2150 above 2**-1126) with headroom in the last.
N_LIMBS = 68
_MASK = (1 << LIMB_BITS) - 1
_LOW = 1126  # 2**-1126: the weight of limb 0's lowest bit (frexp's e − 53 for the smallest subnormal)
#: Rows added per bincount: every bin then receives fewer than 2**21 values below 2**32, so the
#: float64 bincount totals are exact integers.
_ROWS = 1 << 20


@dataclass(eq=False)
class ExactSum:
    """The exact sum of float64 arrays of one shape (e.g. per-block score moments
    (n_targets, n_units, 2)).  Merge with ``+=``; :meth:`value` gives the correctly rounded total."""

    limbs: np.ndarray  #: int64 (*shape, N_LIMBS), normalised (see the module docstring).
    special: np.ndarray  #: float64 (*shape): the sum of the non-finite values added (0 if none).

    @classmethod
    def zeros(cls, shape: tuple[int, ...]) -> ExactSum:
        return cls(np.zeros((*shape, N_LIMBS), np.int64), np.zeros(shape))

    @classmethod
    def of(cls, rows: np.ndarray) -> ExactSum:
        """The exact sum of ``rows`` (k, *shape) over its first axis."""
        total = cls.zeros(rows.shape[1:])
        total.add(rows)
        return total

    @property
    def shape(self) -> tuple[int, ...]:
        return self.special.shape

    def add(self, rows: np.ndarray) -> ExactSum:
        """Add ``rows`` (k, *shape) exactly; returns self."""
        rows = np.asarray(rows, np.float64).reshape(len(rows), -1)
        if rows.shape[1] != self.special.size:
            raise ValueError(f"rows of {rows.shape[1]} values added to an exact sum of shape {self.shape}")
        finite = np.isfinite(rows)
        if not finite.all():
            with np.errstate(invalid="ignore"):  # inf + (−inf) is NaN, as intended
                self.special += np.where(finite, 0.0, rows).sum(axis=0).reshape(self.shape)
        limbs = self.limbs.reshape(-1, N_LIMBS)
        element = np.arange(limbs.shape[0], dtype=np.int64) * N_LIMBS
        for lo in range(0, len(rows), _ROWS):
            part = rows[lo:lo + _ROWS] if finite.all() else np.where(finite[lo:lo + _ROWS], rows[lo:lo + _ROWS], 0.0)
            fraction, exponent = np.frexp(part)
            magnitude = np.abs(fraction)
            magnitude *= 2.0**53
            mantissa = magnitude.astype(np.int64)  # exact: a double has 53 bits
            position = exponent.astype(np.int64)
            position += _LOW - 53
            shift = position & (LIMB_BITS - 1)
            low_bits = LIMB_BITS - shift
            high = mantissa >> low_bits
            pieces = ((mantissa & ((1 << low_bits) - 1)) << shift, high & _MASK,
                      high >> LIMB_BITS)  # (one shift by 64 would be undefined)
            bins = ((position >> 5) + element).ravel()  # limb of the lowest piece (LIMB_BITS = 2**5)
            negative = (fraction < 0).ravel()
            for k, piece in enumerate(pieces):
                weights = piece.ravel().astype(np.float64)
                np.negative(weights, out=weights, where=negative)
                limbs += np.bincount(bins + k, weights=weights, minlength=limbs.size).astype(np.int64).reshape(
                    limbs.shape)
            _carry(limbs)
        return self

    def __iadd__(self, other: ExactSum) -> ExactSum:
        if other.shape != self.shape:
            raise ValueError(f"exact sums of shapes {self.shape} and {other.shape} cannot be added")
        self.limbs += other.limbs
        with np.errstate(invalid="ignore"):
            self.special += other.special
        _carry(self.limbs.reshape(-1, N_LIMBS))
        return self

    def copy(self) -> ExactSum:
        return ExactSum(self.limbs.copy(), self.special.copy())

    def __getstate__(self) -> dict:
        """Pickled with the limbs in use only (a Dask transfer of a state with 10^5 units' score
        moments: 3 MB instead of 109 MB); :meth:`__setstate__` puts back the zeros."""
        first, stop = _used(self.limbs.reshape(-1, N_LIMBS))
        return {"first": first, "limbs": np.ascontiguousarray(self.limbs[..., first:stop]), "special": self.special}

    def __setstate__(self, state: dict) -> None:
        used = state["limbs"]
        self.limbs = np.zeros((*used.shape[:-1], N_LIMBS), np.int64)
        self.limbs[..., state["first"]:state["first"] + used.shape[-1]] = used
        self.special = state["special"]

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, ExactSum) and np.array_equal(self.limbs, other.limbs)
                and np.array_equal(self.special, other.special, equal_nan=True))

    def is_normalised(self) -> bool:
        """Whether the limbs are in their normal form (a check of stored sums)."""
        body = self.limbs[..., :-1]
        return bool(((body >= 0) & (body <= _MASK)).all())

    def value(self) -> np.ndarray:
        """The total, correctly rounded to float64 (round half to even), of shape ``shape``."""
        limbs = self.limbs.reshape(-1, N_LIMBS)
        out = np.zeros(limbs.shape[0])
        first, stop = _used(limbs)
        if stop:
            scale = LIMB_BITS * first - _LOW  # the exponent of the lowest limb used
            # each element's integer from its limbs' bytes: the body limbs (in [0, 2**32)) as unsigned
            # little-endian 32-bit words, plus the signed last limb when it is in use
            body = np.ascontiguousarray(limbs[:, first:min(stop, N_LIMBS - 1)], dtype="<u4").tobytes()
            width = 4 * (min(stop, N_LIMBS - 1) - first)
            top = limbs[:, -1].tolist() if stop == N_LIMBS else None
            top_shift = LIMB_BITS * (N_LIMBS - 1 - first)
            for i in range(limbs.shape[0]):
                integer = int.from_bytes(body[i * width:(i + 1) * width], "little")
                if top is not None and top[i]:
                    integer += top[i] << top_shift
                out[i] = _to_float(integer, scale)
        special = self.special.reshape(-1)
        return np.where(special == 0, out, special).reshape(self.shape)


def _used(limbs: np.ndarray) -> tuple[int, int]:
    """``(first, stop)``: the limbs (columns of ``limbs`` (m, N_LIMBS)) that are not zero in every
    element; ``(0, 0)`` if all are."""
    used = np.flatnonzero(limbs.any(axis=0))
    return (int(used[0]), int(used[-1]) + 1) if len(used) else (0, 0)


def _carry(limbs: np.ndarray) -> None:
    """Bring every limb but the last into [0, 2**32) (carries move up; the last keeps the sign).

    Only the limbs in use are visited (a sum of scores uses a handful of the 68): below the first
    one in use every limb is zero, and above the last one in use a limb stays zero unless a carry
    reaches it, so the walk stops at the first zero carry past the last limb in use."""
    first, stop = _used(limbs)
    for k in range(first, N_LIMBS - 1):
        carry = limbs[:, k] >> LIMB_BITS
        if carry.any():
            limbs[:, k] -= carry << LIMB_BITS
            limbs[:, k + 1] += carry
        elif k >= stop:
            break


def _to_float(integer: int, exponent: int) -> float:
    """``integer · 2**exponent`` correctly rounded (Python's int division and conversion round
    correctly); ±inf beyond the float range."""
    try:
        return float(integer << exponent) if exponent >= 0 else integer / (1 << -exponent)
    except OverflowError:
        return float("inf") if integer > 0 else float("-inf")


def add_sums(mine: ExactSum | None, theirs: ExactSum | None) -> ExactSum | None:
    """``theirs`` added into ``mine`` (None: no sums), as a state's ``absorb`` merges its optional
    moments; returns the sums to keep (``mine``, or a copy of ``theirs`` when ``mine`` is None)."""
    if theirs is None:
        return mine
    if mine is None:
        return theirs.copy()
    mine += theirs
    return mine
