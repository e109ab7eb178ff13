"""Side-by-side benchmarks: aiostack against uvloop and asyncio on the kernel's sockets, and PyTCP.

``python -m benchmarks.run`` (``make bench``) runs the whole comparison; ``--quick``
(``make bench-quick``) a two-minute subset. See ``benchmarks/README.md``.
"""
