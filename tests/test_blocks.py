"""engine.blocks.over_blocks: every row once, in blocks, with or without a pool."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from engine.blocks import over_blocks


@pytest.mark.parametrize(("n_rows", "block"), [(0, 4), (1, 4), (7, 4), (8, 4), (9, 4), (10, 100)])
@pytest.mark.parametrize("threads", [None, 3])
def test_every_row_is_handled_once_in_blocks_of_at_most_block_rows(n_rows, block, threads):
    seen = np.zeros(n_rows, np.int64)
    sizes = []

    def work(start: int, stop: int) -> None:
        sizes.append(stop - start)
        seen[start:stop] += 1

    if threads is None:
        over_blocks(n_rows, work, block=block)
    else:
        with ThreadPoolExecutor(threads) as pool:
            over_blocks(n_rows, work, pool, block)
    assert (seen == 1).all() and all(0 < size <= block for size in sizes)
    assert len(sizes) == -(-n_rows // block)
