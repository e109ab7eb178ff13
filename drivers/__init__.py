"""Poll-mode drivers: they move frames between device queues and pooled buffers, nothing more."""

from .base import Driver, DriverWrapper, Offloads, QueueCounters
from .buffers import Packet, PacketPool, PoolExhausted

__all__ = ["Driver", "DriverWrapper", "Offloads", "Packet", "PacketPool", "PoolExhausted", "QueueCounters"]
