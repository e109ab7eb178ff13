"""Poll-mode drivers: they move frames between device queues and pooled buffers, nothing more.

``memory`` (in-process links and a learning switch, software RSS), ``tap`` (Linux TAP with
virtio_net_hdr offloads), ``packet`` (AF_PACKET rings) and ``xdp`` (AF_XDP sockets and an XDP
program) on an existing interface, and wrappers around any driver: ``pcap`` (capture) and ``fault``
(loss, duplication, reordering, corruption, delay).
"""

from .base import Driver, DriverWrapper, Offloads, QueueCounters
from .buffers import Packet, PacketPool, PoolExhausted
from .fault import FaultProfile, FaultWrapper
from .memory import MemoryLink, MemoryPort, MemorySwitch
from .pcap import PcapWrapper
from .rss import Toeplitz, flow_hash

__all__ = [
    "Driver",
    "DriverWrapper",
    "FaultProfile",
    "FaultWrapper",
    "MemoryLink",
    "MemoryPort",
    "MemorySwitch",
    "Offloads",
    "Packet",
    "PacketPool",
    "PcapWrapper",
    "PoolExhausted",
    "QueueCounters",
    "Toeplitz",
    "flow_hash",
]
