"""Ranking kernels: the one home of ranking in the engine.

``rank_desc``: descending competition ranks ("1, 2, 2, 4"), the field's convention for scores
(COINr: ``rank(-x, ties.method = "min", na.last = "keep")``).  Non-finite values stay missing
(NaN) and do not count.  The twin is :func:`engine.kernels.reference.rank_desc`.

Every ranking in the engine goes through this module: the ranking stage, rank confidence sets and
group tables (through :func:`engine.stages.rank.rank`), and
the Monte Carlo and bootstrap kernels through the packed-key variants below (the same ranks, with
missing as 0, by faster sorts), which the tests compare with the same twin.
"""

from __future__ import annotations

import numpy as np

from ._jit import jit

__all__ = ["rank_desc", "rank_ordered"]  # rank_1d is rank_desc's per-column building block


@jit
def rank_1d(x, descending, out):
    """Competition rank of one column into ``out`` (float64, NaN for missing).

    Formula: rank_i = 1 + #{j present : x_j > x_i} (descending) or ``<`` (ascending).
    Implementation: stable argsort of the present keys, then a walk that gives every member of a
    run of equal keys the position of the run's first member.
    """
    n = x.shape[0]
    keys = np.empty(n, np.float64)
    where = np.empty(n, np.int64)
    count = 0
    for i in range(n):
        out[i] = np.nan
        v = x[i]
        if np.isfinite(v):
            keys[count] = -v if descending else v
            where[count] = i
            count += 1
    order = np.argsort(keys[:count], kind="mergesort")
    current = 0.0
    previous = 0.0
    for pos in range(count):
        key = keys[order[pos]]
        if pos == 0 or key != previous:
            current = pos + 1.0
            previous = key
        out[where[order[pos]]] = current
    return out


@jit
def rank_desc(x, out):
    """Descending competition rank of every column of ``x`` (n_units, n_cols) into ``out``."""
    for j in range(x.shape[1]):
        rank_1d(x[:, j].copy(), True, out[:, j])
    return out


@jit
def rank_ordered(x, order, out):
    """Descending competition ranks of one column ``x`` (n_units,) into ``out`` (float64, or float32
    up to 2^24 units as the ranking stage stores them; NaN for missing), given ``order`` (n_units,):
    the units with a finite value first, by non-increasing value (any order among equal values),
    then the others — what NumPy's unstable ``argsort(-x)`` gives with the non-finite keys set to
    NaN.  The ranking stage sorts with NumPy (several times faster than a compiled mergesort at 10⁶
    units) and walks here: a run of equal values gets the position of its first member,
    rank_i = 1 + #{j present : x_j > x_i}."""
    n = x.shape[0]
    for i in range(n):
        out[i] = np.nan
    current = 0.0
    previous = 0.0
    for pos in range(n):
        unit = order[pos]
        v = x[unit]
        if not np.isfinite(v):
            break
        if pos == 0 or v != previous:
            current = pos + 1.0
            previous = v
        out[unit] = current
    return out


# ----------------------------------------------------------------------------- packed-key variants
#
# Two implementations of the same descending competition ranks (missing -> 0) for the Monte Carlo and
# bootstrap hot loops, where sorting dominates: rank_scores (radix sort of order-preserving 64-bit keys,
# O(n_units), scratch buffers passed in), and pack_keys -> NumPy sort of 32-bit keys -> sorted_ranks
# (the split path: NumPy's vectorised sort runs between two kernels).  Both are tested against the one
# twin, engine.kernels.reference.rank_desc.


@jit
def descending_key(v, bits):
    """Order-preserving unsigned key of a score for a descending sort: larger score → smaller key,
    missing → the largest key, −0.0 is 0.0.  ``bits`` is the score's IEEE bit pattern."""
    if not np.isfinite(v):
        return np.uint64(0xFFFFFFFFFFFFFFFF)
    b = np.uint64(0) if v == 0.0 else bits
    ascending = ~b if b & np.uint64(0x8000000000000000) else b | np.uint64(0x8000000000000000)
    return ~ascending


@jit
def rank_scores(score, key, prefix, order, spare, counts, rank):
    """Descending competition ranks of ``score`` into ``rank`` (missing → 0), in O(n).

    Each score becomes an order-preserving unsigned key (descending: larger score → smaller
    key; missing → largest key; −0.0 is 0.0).  An LSD radix sort on the key's upper 32 bits
    (four 8-bit passes, skipping passes where every key has the same digit) orders the units;
    an insertion pass on the full 64-bit keys then fixes the rare neighbours that share a prefix.
    Ties are decided on the float values, so equal scores share the minimum rank.
    Returns the sorted order (one of ``order``/``spare``).
    """
    n = score.shape[0]
    bits = score.view(np.uint64)
    for i in range(n):
        k = descending_key(score[i], bits[i])
        key[i] = k
        prefix[i] = np.uint32(k >> np.uint64(32))
        order[i] = i
    counts[:, :] = 0
    for i in range(n):
        p = prefix[i]
        counts[0, p & 255] += 1
        counts[1, (p >> 8) & 255] += 1
        counts[2, (p >> 16) & 255] += 1
        counts[3, (p >> 24) & 255] += 1
    src = order
    dst = spare
    for d in range(4):
        shift = 8 * d
        if counts[d, (prefix[0] >> shift) & 255] == n:
            continue  # every key has this digit: the pass would not move anything
        total = 0
        for c in range(256):
            count = counts[d, c]
            counts[d, c] = total
            total += count
        for p in range(n):
            unit = src[p]
            c = (prefix[unit] >> shift) & 255
            dst[counts[d, c]] = unit
            counts[d, c] += 1
        src, dst = dst, src
    for p in range(1, n):  # full-key fix-up among equal prefixes
        unit = src[p]
        k = key[unit]
        m = p - 1
        while m >= 0 and key[src[m]] > k:
            src[m + 1] = src[m]
            m -= 1
        src[m + 1] = unit
    current = 0
    for p in range(n):
        unit = src[p]
        if not np.isfinite(score[unit]):
            rank[unit] = 0
        else:
            if p == 0 or score[unit] != score[src[p - 1]]:
                current = p + 1
            rank[unit] = current
    return src


@jit
def index_bits(n_units):
    """Low bits of a packed key that hold the unit index."""
    bits = 1
    while (1 << bits) < n_units:
        bits += 1
    return bits


@jit
def finite_range(values):
    """(smallest, largest) finite value of a 1-D array ((inf, −inf) when there is none), with four
    independent chains (the order does not matter for a min or a max; x − x == 0 exactly when x is
    finite)."""
    n = values.shape[0]
    lo0 = lo1 = lo2 = lo3 = np.inf
    hi0 = hi1 = hi2 = hi3 = -np.inf
    whole = n - n % 4
    for i in range(0, whole, 4):
        a, b, c, d = values[i], values[i + 1], values[i + 2], values[i + 3]
        if a - a == 0.0:
            lo0, hi0 = min(lo0, a), max(hi0, a)
        if b - b == 0.0:
            lo1, hi1 = min(lo1, b), max(hi1, b)
        if c - c == 0.0:
            lo2, hi2 = min(lo2, c), max(hi2, c)
        if d - d == 0.0:
            lo3, hi3 = min(lo3, d), max(hi3, d)
    for i in range(whole, n):
        a = values[i]
        if a - a == 0.0:
            lo0, hi0 = min(lo0, a), max(hi0, a)
    return min(min(lo0, lo1), min(lo2, lo3)), max(max(hi0, hi1), max(hi2, hi3))


@jit
def pack_keys_between(score, bits, lo, hi, out):
    """out[i] = 32-bit descending-order key of score[i] against the range [lo, hi]: a quantised
    score in the upper ``32 − bits`` bits, the unit index i in the low ``bits``.  With
    L = 2^(32 − bits) − 2::

        q_i = clamp(floor((hi/2 − s_i/2) · L / (hi/2 − lo/2)), 0, L)      (missing: q_i = L + 1)

    (halves, so that hi − lo cannot overflow; a zero or non-finite scale makes every q 0).  Every
    step rounds monotonically, so a larger score never gets a larger q: sorting the keys ascending
    orders units by descending score, except among units with equal q (ties, near-ties and scores
    clamped at either end, ordered by unit index), which :func:`montecarlo_accumulate` re-orders
    exactly on the floats; missing scores (NaN, ±inf) sort last.  Any range gives exact ranks; a
    range close to the scores' makes runs of equal q rare."""
    n = score.shape[0]
    missing = (1 << (32 - bits)) - 1
    levels = float(missing - 1)
    half_hi = hi * 0.5
    span = half_hi - lo * 0.5
    scale = levels / span if span > 0.0 else 0.0
    if not np.isfinite(scale):
        scale = 0.0
    for i in range(n):  # branch-free, so that it vectorises
        v = score[i]
        x = (half_hi - v * 0.5) * scale  # in [0, L] (up to rounding) for lo <= v <= hi
        if not (x < levels):
            x = levels
        if not (x > 0.0):
            x = 0.0
        q = np.int64(x)
        if not (v - v == 0.0):
            q = missing
        out[i] = np.uint32((q << bits) | i)


@jit
def pack_keys(score, bits, out):
    """:func:`pack_keys_between` against the row's own finite range (used where no bound of the
    scores is known in advance: non-arithmetic aggregation, missing values)."""
    lo, hi = finite_range(score)
    pack_keys_between(score, bits, lo, hi, out)


@jit
def _run_end(sorted_keys, high, p):
    """End (exclusive) of the run of sorted keys from position p that share its quantised part
    (``high`` masks it); p + 1 when the next key's differs."""
    q = p + 1
    while q < sorted_keys.shape[0] and ((sorted_keys[q] ^ sorted_keys[p]) & high) == 0:
        q += 1
    return q


@jit
def _rank_run(score, sorted_keys, mask, p, q, order, rank):
    """Exact ranks of the units in sorted positions p .. q − 1, whose keys share their quantised
    part (equal or nearly equal scores, or missing ones): insertion sort on the float scores
    (missing last), ties share the minimum rank, missing → 0."""
    for k in range(p, q):
        order[k] = np.int64(sorted_keys[k] & mask)
    for k in range(p + 1, q):
        unit = order[k]
        v = score[unit]
        if not np.isfinite(v):
            continue
        m = k - 1
        while m >= p and not (score[order[m]] >= v):
            order[m + 1] = order[m]
            m -= 1
        order[m + 1] = unit
    current = p + 1
    for k in range(p, q):
        unit = order[k]
        if not np.isfinite(score[unit]):
            rank[unit] = 0
        else:
            if k > p and score[unit] != score[order[k - 1]]:
                current = k + 1
            rank[unit] = current


@jit
def sorted_ranks(score, sorted_keys, bits, order, rank):
    """Competition ranks (missing → 0) of ``score`` into ``rank`` from its sorted packed keys;
    returns whether every unit has a rank.

    A key whose quantised part (the bits above the index) differs from its neighbours' holds a
    distinct score, so its rank is its position + 1: every unit gets that first (one pass over the
    sorted keys), then each run of keys with equal quantised parts is re-ranked exactly on the
    floats where it stands (:func:`_rank_run`, ties share the minimum rank).  Runs are exact ties,
    near-ties (in about a quarter of the replicates of the shipped city index, whose scores crowd
    the low end of the range), scores clamped at either end of a quantisation range narrower than
    theirs (every score, when the range is empty or non-finite), or missing scores (which sort
    last); one branch-free pass finds the first and the last run, so replicates without one pay
    that scan and the rank pass only.  ``order`` is scratch."""
    n_units = score.shape[0]
    mask = np.uint32((1 << bits) - 1)
    high = np.uint32(0xFFFFFFFF) ^ mask
    first = n_units  # first and last sorted positions p whose key shares its quantised part with p + 1
    last = -1  # (branch-free min and max, so that it vectorises)
    for p in range(n_units - 1):
        same = ((sorted_keys[p] ^ sorted_keys[p + 1]) & high) == 0
        first = min(first, p if same else n_units)
        last = max(last, p if same else -1)
    for p in range(n_units):
        rank[np.int64(sorted_keys[p] & mask)] = p + 1
    p = first
    while p <= last:
        q = _run_end(sorted_keys, high, p)
        if q > p + 1:
            _rank_run(score, sorted_keys, mask, p, q, order, rank)
        p = q
    final = np.int64(sorted_keys[n_units - 1] & mask)  # missing scores sort last
    if np.isfinite(score[final]):
        return True
    rank[final] = 0  # a lone missing score is not in a run
    return False
