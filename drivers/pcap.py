"""A driver wrapper that records every frame to a pcap file (what ``tcpdump -w`` would see).

The file is classic libpcap format (https://www.tcpdump.org/manpages/pcap-savefile.5.txt),
link type ``LINKTYPE_ETHERNET`` (1), microsecond timestamps. ``dpkt.pcap.Writer`` writes the file
header; records are written here with a precompiled struct in the same (native) byte order, so a
frame longer than ``snaplen`` is stored truncated *with its original length* in the record header
(dpkt's ``writepkt`` would record the truncated length as the wire length) and the frame's
memoryview goes to the file without an intermediate ``bytes`` copy.

The file is flushed after every burst that wrote something, so ``tcpdump -r`` (or Wireshark) can
read it while the program runs.
"""

from __future__ import annotations

import os
import struct
import time
from collections.abc import Callable
from typing import BinaryIO

import dpkt

from .base import Driver, DriverWrapper
from .buffers import Packet

__all__ = ["PcapWrapper"]

_RECORD = struct.Struct("=IIII")  # ts_sec, ts_usec, incl_len, orig_len — native, as dpkt writes


class PcapWrapper(DriverWrapper):
    """Record frames received (after ``rx_burst``) and transmitted (before they are passed on).

    ``path_or_fileobj``: a path (opened, owned and closed by the wrapper) or a binary file object
    (flushed per burst but left open on :meth:`close` — its owner closes it). ``clock`` gives the
    wall-clock timestamps (seconds since the epoch); one reading stamps a whole burst.
    """

    def __init__(
        self,
        inner: Driver,
        path_or_fileobj: str | os.PathLike[str] | BinaryIO,
        snaplen: int = 65535,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if snaplen <= 0:
            raise ValueError("snaplen must be positive")
        super().__init__(inner)
        self._file: BinaryIO
        if isinstance(path_or_fileobj, str | os.PathLike):
            self._file = open(path_or_fileobj, "wb")  # noqa: SIM115 - lives until close()
            self._owns_file = True
        else:
            self._file = path_or_fileobj
            self._owns_file = False
        self.snaplen = snaplen
        self._clock = clock
        self._writer = dpkt.pcap.Writer(self._file, snaplen=snaplen, linktype=dpkt.pcap.DLT_EN10MB)
        self._file.flush()
        self.frames_written = 0
        self.closed = False

    def rx_burst(self, queue: int, max_count: int) -> list[Packet]:
        packets = self.inner.rx_burst(queue, max_count)
        if packets and not self.closed:
            self._record(packets)
        return packets

    def tx_burst(self, queue: int, packets: list[Packet]) -> int:
        if packets and not self.closed:
            self._record(packets)
        return self.inner.tx_burst(queue, packets)

    def close(self) -> None:
        """Close the capture (if the wrapper opened it) and the inner driver. Idempotent."""
        if not self.closed:
            self.closed = True
            if self._owns_file:
                self._file.close()
            else:
                self._file.flush()
        self.inner.close()

    def stats(self) -> dict[str, object]:
        stats = self.inner.stats()
        stats["pcap"] = {"frames_written": self.frames_written}
        return stats

    def _record(self, packets: list[Packet]) -> None:
        usec_total = round(self._clock() * 1_000_000)
        sec, usec = divmod(usec_total, 1_000_000)
        write = self._file.write
        pack = _RECORD.pack
        snaplen = self.snaplen
        for pkt in packets:
            start = pkt.start
            n = pkt.end - start
            cap = n if n <= snaplen else snaplen
            write(pack(sec, usec, cap, n))
            write(pkt.view[start : start + cap])
        self._file.flush()
        self.frames_written += len(packets)
