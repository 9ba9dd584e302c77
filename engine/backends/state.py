"""The interface of the states the backends run and merge (the backends know no analysis)."""

from __future__ import annotations

from typing import Protocol, TypeVar

__all__ = ["BlockState", "MergeableState"]

State = TypeVar("State", bound="MergeableState")


class MergeableState(Protocol):
    """Statistics of a set of blocks that add up exactly, in any grouping (so a result is the same
    on every backend): e.g. :class:`engine.analysis.montecarlo.ChunkState`."""

    def merge(self: State, other: State) -> State:
        """Both states added up, in a new state (neither is changed)."""

    def absorb(self: State, other: State) -> State:
        """``other`` added into this state; returns self."""

    def copy(self: State) -> State:
        """A state with arrays of its own."""


class BlockState:
    """What every analysis state shares (one home): the set ``blocks`` of work blocks it counts,
    :meth:`merge` as a copy that absorbs, and :meth:`claim`, which an ``absorb`` calls first so that no
    block is ever counted twice."""

    blocks: set[int]

    def merge(self: State, other: State) -> State:
        """Both states added up, in a new state (neither is changed)."""
        return self.copy().absorb(other)

    def claim(self, other: BlockState) -> None:
        """Take ``other``'s blocks into this state's set; ValueError if any is counted already."""
        overlap = self.blocks & other.blocks
        if overlap:
            raise ValueError(f"blocks counted twice: {sorted(overlap)[:5]}")
        self.blocks |= other.blocks
