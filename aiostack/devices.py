"""The one driver factory: the device ``--driver``/``--iface`` name, opened with the queues asked for.

Used by :meth:`aiostack.stack.Stack.from_options` (one reactor) and by :mod:`aiostack.cores` (the
parent of several opens every queue, steered by the flow hash), so both give the same errors.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .config import Options
    from .drivers.base import Driver
    from .drivers.buffers import PacketPool

__all__ = ["DeviceError", "open_driver", "with_filter"]


class DeviceError(ValueError):
    """The options name a device that cannot be opened from options alone (the memory driver,
    a host address on AF_PACKET, a device without the queues asked for): an entry point such as
    :func:`aiostack.serve` or ``aiostack run`` says it in one line and exits."""

PACKET_HOST_ADDR = (
    "--host-addr configures the kernel's side of a TAP; with --driver packet give the address to the "
    "kernel's end of the link (the veth peer) yourself"
)


XDP_HOST_ADDR = (
    "--host-addr configures the kernel's side of a TAP; with --driver xdp give the address to the "
    "kernel's end of the link (the veth peer) yourself"
)


def memory_needs_peer(cores: int) -> str:
    """What to say when ``--driver memory`` comes without a device (it has no name to open)."""
    if cores > 1:
        return (f"--driver memory with --cores {cores} has no queues to open by name: pass the device in code "
                f"(device=SharedMemoryLink.create(({cores}, 1)).end(0))")
    return "--driver memory needs a peer: pass a MemoryPort as driver (the examples build one)"


def open_driver(
    options: Options, pool: PacketPool, *, queues: int, steer: contextlib.ExitStack | None = None
) -> Driver:
    """Open the device ``options`` name with ``queues`` queues. ``steer``: flows are spread over
    the queues by :func:`aiostack.drivers.steering.flow_hash` (a TAP gets the steering program, an
    AF_PACKET fanout group its eBPF twin) — what a multi-core parent asks for; the device and the
    program are then closed by that exit stack. ``ValueError`` with the option named for what
    cannot be opened from options alone (:class:`DeviceError`)."""
    host_addr = str(options.host_addr) if options.host_addr else None
    if options.driver == "tap":
        from .drivers.tap import TapDriver

        tap = TapDriver(options.iface, queues=queues, pool=pool, mtu=options.mtu, host_addr=host_addr)
        if steer is not None:
            from .drivers.steering import SteeringProgram

            steer.enter_context(tap)
            steer.enter_context(SteeringProgram()).attach(tap.fileno(0))
        return tap
    if options.driver == "packet":
        from .drivers.packet import PacketDriver

        if host_addr:
            raise DeviceError(PACKET_HOST_ADDR)
        if steer is None:
            return PacketDriver(options.iface, queues=queues, pool=pool, mtu=options.mtu)
        return steer.enter_context(PacketDriver(options.iface, queues=queues, pool=pool, mtu=options.mtu,
                                                fanout="steer"))
    if options.driver == "xdp":
        if host_addr:
            raise DeviceError(XDP_HOST_ADDR)
        driver = _xdp_driver(options, queues, pool)
        return steer.enter_context(driver) if steer is not None else driver
    raise DeviceError(memory_needs_peer(options.cores))


def _xdp_driver(options: Options, queues: int, pool: PacketPool) -> Driver:
    """The AF_XDP driver ``options`` describe, their filter rules compiled into its program (its
    queues steered by the flow hash when ``--xdp-peer`` names the veth's other end)."""
    from .drivers.xdp import XdpDriver
    from .ip.filter import parse_rules

    rules = parse_rules(options.filter)
    return XdpDriver(options.iface, queues=queues, pool=pool, mtu=options.mtu, mode=options.xdp_mode,
                     bind=options.xdp_bind, frame_size=options.xdp_frame_size, frame_count=options.xdp_frames,
                     filter_rules=rules, rule_names=[r.text for r in rules], steer_peer=options.xdp_peer,
                     peer_netns=options.xdp_peer_netns)


def with_filter(driver: Driver, options: Options) -> Driver:
    """``driver`` behind the software ingress filter when ``options`` have rules and the driver
    does not run them itself (the AF_XDP driver has them in its XDP program)."""
    from .drivers.xdp import XdpDriver
    from .ip.filter import FilterWrapper, parse_rules

    if not options.filter or isinstance(driver, XdpDriver):
        return driver
    return FilterWrapper(driver, parse_rules(options.filter))
