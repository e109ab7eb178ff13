"""Three byte operations of the per-datagram path, as plain Python here and as C inline functions in
``speedups.pxd`` for the compiled build (this module itself is never compiled: a compiled module
cimports the inline C from the ``.pxd``; these are its reference, and serve pure callers that
want a function).

- :func:`same_bytes`: ``buf[off:off + len(value)] == value`` without making the slice (a
  ``memcmp``; the slice is a new bytearray, ~490 instructions).
- :func:`put_bytes`: ``buf[off:off + len(data)] = data`` as a ``memcpy`` (the slice assignment
  makes a slice object and goes through the generic one, ~300).
- :func:`copy_bytes`: ``dest[a:a + n] = src[b:b + n]`` as one ``memcpy`` (the slice of ``src`` is
  a second copy of the bytes and an allocation: a TCP segment's payload leaving the send queue).

Compiled callers use the cimported names under ``if _COMPILED:`` (without a Python import of
them, which Cython refuses for a cimported inline function: hence their ``noqa: F821``) and keep
the plain expression otherwise: in the pure build the expression is cheaper than a call.
"""

from __future__ import annotations


def same_bytes(buf: bytearray, off: int, value: bytes) -> bool:
    """Whether ``buf`` holds ``value`` at ``off`` (False when it would run past the end)."""
    return off >= 0 and buf[off : off + len(value)] == value


def put_bytes(buf: bytearray, off: int, data: bytearray) -> None:
    """Overwrite ``buf[off:off + len(data)]`` with ``data`` (ValueError past either end)."""
    if off < 0 or off + len(data) > len(buf):
        raise ValueError(f"{len(data)} bytes at {off} do not fit in {len(buf)}")
    buf[off : off + len(data)] = data


def copy_bytes(dest: bytearray, dest_off: int, src: bytearray, src_off: int, n: int) -> None:
    """Overwrite ``dest[dest_off:dest_off + n]`` with ``src[src_off:src_off + n]`` (ValueError
    when either range runs past its buffer)."""
    if n < 0 or dest_off < 0 or src_off < 0 or dest_off + n > len(dest) or src_off + n > len(src):
        raise ValueError(f"{n} bytes from {src_off} to {dest_off} do not fit in {len(src)} and {len(dest)}")
    dest[dest_off : dest_off + n] = src[src_off : src_off + n]
