"""The interface of the states the backends run and merge (the backends know no analysis)."""

from __future__ import annotations

from typing import Protocol, TypeVar

__all__ = ["MergeableState"]

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
