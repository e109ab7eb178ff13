"""The counter type of every drop and statistic on the packet path."""

from __future__ import annotations

from collections import Counter

__all__ = ["Counts", "count", "fold"]


class Counts(Counter[str]):
    """A :class:`collections.Counter` whose ``counts[name] += 1`` stays in C.

    ``Counter`` defines ``__delitem__`` in Python, and CPython serves item assignment and deletion
    through one type slot: so every assignment to a Counter, and each ``+= 1`` is one, goes through
    a generic wrapper that looks ``__setitem__`` up by name (about 4× a dict's assignment, ~680
    instructions; the packet path counts ~20 events per request/response round trip). Deletion here
    is dict's (a missing name raises KeyError, which nothing relies on), so the slot stays dict's own.
    Everything else is Counter's: missing names read as 0, ``most_common``, ``total``, arithmetic.
    """

    __slots__ = ()
    __delitem__ = dict.__delitem__  # type: ignore[assignment]

    def __init__(self, iterable: object = None, /, **kwds: int) -> None:
        # Counter's __init__ calls its Python-level update() even with nothing to add (~3k
        # instructions): an empty Counts is made per connection that counts anything.
        if iterable is not None or kwds:
            super().__init__(iterable, **kwds)  # type: ignore[arg-type]


def count(counts: Counter[str], name: str) -> None:
    """One more ``name`` in ``counts``: the packet path's ``counts[name] += 1``.

    Spelled with dict's own ``get`` because compiled code reaches a Counter's items only through
    the generic mapping protocol (Cython's typed ``dict`` refuses a subclass), ~450 instructions
    for the read and the write; ``dict.get`` on it compiles to the dict's C lookup, and the
    assignment stays dict's (see :class:`Counts`): ~150. A C call from compiled modules
    (``counts.pxd``).
    """
    counts[name] = dict.get(counts, name, 0) + 1


def fold(counts: Counter[str], name: str, n: int) -> None:
    """Add ``n`` events of ``name`` counted in an integer field to ``counts``; none leaves ``name``
    out, as :func:`count` would have.

    The packet path's few per-frame events (a frame received, a segment sent …) are counted in
    C integer fields of their layer, an addition each instead of :func:`count`'s dict read, new
    int and dict write; the layer's ``stats`` property folds them in here when someone reads it,
    so every reader sees one Counter as before.
    """
    if n:
        counts[name] += n
