"""Relative paths kept flat: one UTF-8 byte buffer, an offset array and an optional row selection.

A list of 1.3 M Python strings is 1.3 M objects whose reference counts every DataLoader worker touches: the
pages they live on are copied into each worker (the long-known PyTorch DataLoader issue), so 8 ranks × 8
workers hold 64 copies. Numpy buffers have one object header each and data pages nobody writes to, so forked
workers share them. A split is a row selection of the index's table (4 bytes a row), not a copy of its paths.
A row is decoded to a `str` only when it is read.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Sequence
from typing import overload

import numpy as np


class PathTable(Sequence[str]):
    """An immutable sequence of strings stored as blob[offsets[i]:offsets[i + 1]] for each selected row."""

    __slots__ = ("blob", "offsets", "rows")

    def __init__(self, blob: np.ndarray, offsets: np.ndarray, rows: np.ndarray | None = None) -> None:
        """blob: uint8 UTF-8 bytes of all strings; offsets: int64, one more than strings; rows: selection."""
        self.blob = np.ascontiguousarray(blob, dtype=np.uint8)
        self.offsets = np.ascontiguousarray(offsets, dtype=np.int64)
        self.rows = None if rows is None else np.ascontiguousarray(rows, dtype=np.int64)

    @classmethod
    def from_strings(cls, strings: Iterable[str]) -> PathTable:
        """Pack strings (in their order) into one buffer."""
        encoded = [s.encode("utf-8") for s in strings]
        offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
        np.cumsum([len(b) for b in encoded], out=offsets[1:])
        blob = np.frombuffer(b"".join(encoded), dtype=np.uint8) if encoded else np.zeros(0, np.uint8)
        return cls(blob, offsets)

    def __len__(self) -> int:
        """Number of selected strings."""
        return len(self.offsets) - 1 if self.rows is None else len(self.rows)

    def _row(self, i: int) -> int:
        """The row of the full table behind position i (negative positions count from the end)."""
        n = len(self)
        if not -n <= i < n:
            raise IndexError(f"PathTable index {i} out of range for {n} paths")
        i = i + n if i < 0 else i
        return i if self.rows is None else int(self.rows[i])

    @overload
    def __getitem__(self, i: int) -> str: ...
    @overload
    def __getitem__(self, i: slice) -> PathTable: ...
    def __getitem__(self, i: int | slice) -> str | PathTable:
        """The i-th string, or a PathTable of a slice (sharing the buffer)."""
        if isinstance(i, slice):
            return self.take(np.arange(len(self))[i])
        r = self._row(int(i))
        return self.blob[self.offsets[r] : self.offsets[r + 1]].tobytes().decode("utf-8")

    def __iter__(self) -> Iterator[str]:
        """The strings in order."""
        blob, offsets = self.blob, self.offsets
        rows = range(len(offsets) - 1) if self.rows is None else self.rows.tolist()
        for r in rows:
            yield blob[offsets[r] : offsets[r + 1]].tobytes().decode("utf-8")

    def take(self, positions: np.ndarray | Sequence[int]) -> PathTable:
        """The strings at positions (of this selection), as a table sharing this one's buffer."""
        positions = np.asarray(positions, dtype=np.int64)
        rows = positions if self.rows is None else self.rows[positions]
        return PathTable(self.blob, self.offsets, rows)

    def lengths(self) -> np.ndarray:
        """Byte length of each selected string."""
        sizes = np.diff(self.offsets)
        return sizes if self.rows is None else sizes[self.rows]

    def digest(self) -> str:
        """SHA-1 of the selected strings, each followed by a newline (a cache key of a split)."""
        h = hashlib.sha1()
        for s in self:
            h.update(s.encode("utf-8") + b"\n")
        return h.hexdigest()

    def nbytes(self) -> int:
        """Bytes held by the buffers (the full table's blob and offsets, plus this selection)."""
        return self.blob.nbytes + self.offsets.nbytes + (0 if self.rows is None else self.rows.nbytes)

    def __eq__(self, other: object) -> bool:
        """Equal to any sequence of the same strings in the same order (a list, another table)."""
        if isinstance(other, str) or not isinstance(other, Sequence):
            return NotImplemented
        return len(self) == len(other) and all(a == b for a, b in zip(self, other, strict=True))

    __hash__ = None  # mutable-looking sequence semantics, like list

    def __add__(self, other: Sequence[str]) -> list[str]:
        """Concatenation gives a plain list (small selections, tests and logs)."""
        return [*self, *other]

    def __radd__(self, other: Sequence[str]) -> list[str]:
        """list + table gives a plain list too (so `sum(splits.values(), [])` works)."""
        return [*other, *self]

    def __repr__(self) -> str:
        """Size and the first few strings."""
        head = ", ".join(repr(s) for s in self[:3]) if len(self) else ""
        return f"PathTable({len(self)} paths: {head}{', ...' if len(self) > 3 else ''})"
