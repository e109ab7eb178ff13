"""Share-nothing multi-core serving: one reactor process per core, each owning one queue of a
multi-queue device, flows steered to their queue by a hash the stacks compute too.

The devices, and what steers their flows (every one computes
:func:`aiostack.drivers.steering.flow_hash`):

- ``--driver tap``: a multi-queue TAP, the steering program attached with TUNSETSTEERINGEBPF;
- ``--driver packet``: one AF_PACKET socket per queue in a PACKET_FANOUT group whose eBPF fanout
  program is the same hash read from the network header;
- ``--driver memory``: a :class:`~aiostack.drivers.shared_link.SharedMemoryLink` end the caller
  made (``device=``) — shared-memory rings, the sending end choosing the queue (software RSS).

The parent process opens every queue of the device (and configures the kernel's side once) and
forks one reactor per core before any event loop runs. Each reactor keeps only its queue, pins
itself to its core, builds its own :class:`~aiostack.stack.Stack` (pool, ARP cache, timer wheel,
connection table — nothing shared), picks ephemeral ports that steer back to itself
(:meth:`IPStack.steer_to`), serves the application and answers on its own control socket
(``aiostack stat`` lists each reactor).

Non-flow traffic: the steering sends everything that is not IPv4 (ARP) to queue 0, so only
reactor 0 sees ARP. It answers requests for the stack's address (every reactor has the same
MAC and address) and passes every ARP reply on to the other reactors through the cross-core
channels, so a reactor's own request — for the peer of a SYN it must answer, or of a connection
it opens — is answered wherever the reply lands. ICMP is hashed by its addresses: the reactor it
lands on hands an error quoting another reactor's flow, or the echo reply to another reactor's
ping, to that reactor the same way (:meth:`IPStack.steer_to`). TCP segments cross only where the
device, not the flow hash, picks the queue (AF_XDP without ``--xdp-peer``: :func:`device_steers`):
a segment that matches no connection on the reactor it reached is offered to the others before
it is answered with a reset (:func:`offer_strays`).

The parent supervises: SIGINT/SIGTERM stop every reactor (SIGTERM to each, SIGKILL after a
grace period); a reactor that dies is reported on stderr and restarted on its queue — the parent
holds every queue's fd, so the queue stays attached meanwhile and the other reactors keep
serving their connections. A restarted reactor takes its rings' positions from shared memory
(its device queue's, its channels'), so it neither replays what its predecessor consumed nor
overwrites what it sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import select
import signal
import sys
import time
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .config import Options

if TYPE_CHECKING:
    from .control import ControlServer
    from .drivers.base import Driver
    from .networks import StreamHandler
    from .stack import Stack

GRACE_SECONDS = 10.0
RESTART_LIMIT = 5
"""Restarts of one reactor within RESTART_WINDOW seconds before the parent gives up on it."""
RESTART_WINDOW = 30.0


def _describe(status: int) -> str:
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        return f"was killed by {signal.Signals(sig).name}"
    return f"exited with status {os.WEXITSTATUS(status)}"


class Supervisor:
    """Forks ``target(k)`` for k in 0..n-1 (each in its own process), restarts what dies, stops
    everything on SIGINT/SIGTERM. ``run()`` returns the exit status for the parent."""

    def __init__(self, n: int, target: Callable[[int], int | None], *, name: str = "reactor") -> None:
        self.n = n
        self.target = target
        self.name = name
        self.pids: dict[int, int] = {}
        """pid → core."""
        self.restarts: dict[int, list[float]] = {k: [] for k in range(n)}
        """core → the times of its recent restarts (within RESTART_WINDOW)."""
        self.restart_count: dict[int, int] = dict.fromkeys(range(n), 0)
        self.control: Any = None
        """The parent's control socket (:class:`aiostack.control.ParentControl`), served between
        child checks; a forked reactor closes its copy."""
        self._stopping = False

    def reactors(self) -> list[dict[str, Any]]:
        """The running reactors: core, pid and restarts so far, by core."""
        return sorted(({"core": k, "pid": pid, "restarts": self.restart_count[k]} for pid, k in self.pids.items()),
                      key=lambda r: r["core"])

    def _fork(self, k: int) -> None:
        pid = os.fork()
        if pid == 0:  # the reactor
            code = 1
            try:
                if self.control is not None:
                    self.control.forget()
                signal.signal(signal.SIGINT, signal.SIG_DFL)
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                with contextlib.suppress(OSError):
                    os.sched_setaffinity(0, {k % (os.cpu_count() or 1)})
                result = self.target(k)
                code = 0 if result is None else int(result)
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 0
            except BaseException:
                traceback.print_exc()
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
        self.pids[pid] = k

    def _on_signal(self, signum: int, _frame: object) -> None:
        self._stopping = True

    def run(self) -> int:
        old = {s: signal.signal(s, self._on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            for k in range(self.n):
                self._fork(k)
            status = 0
            while not self._stopping:
                try:
                    pid, st = os.waitpid(-1, os.WNOHANG)
                except ChildProcessError:
                    break
                if pid == 0:
                    self._pause(0.05)
                    continue
                k = self.pids.pop(pid, None)
                if k is None or self._stopping:
                    continue
                now = time.monotonic()
                recent = [t for t in self.restarts[k] if now - t < RESTART_WINDOW]
                if len(recent) >= RESTART_LIMIT:
                    print(f"aiostack: {self.name} {k} (pid {pid}) {_describe(st)}; {RESTART_LIMIT} restarts in "
                          f"{RESTART_WINDOW:.0f} s, giving up", file=sys.stderr, flush=True)
                    status = 1
                    self._stopping = True
                    break
                recent.append(now)
                self.restarts[k] = recent
                self.restart_count[k] += 1
                print(f"aiostack: {self.name} {k} (pid {pid}) {_describe(st)}; restarting it", file=sys.stderr,
                      flush=True)
                self._fork(k)
            self._stop_all()
            return status
        finally:
            for s, h in old.items():
                signal.signal(s, h)

    def _pause(self, seconds: float) -> None:
        """Wait between child checks, answering the control socket meanwhile."""
        if self.control is None:
            time.sleep(seconds)
            return
        with contextlib.suppress(InterruptedError):
            if select.select([self.control], [], [], seconds)[0]:
                self.control.serve_one()

    def _stop_all(self) -> None:
        for pid in list(self.pids):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + GRACE_SECONDS
        while self.pids and time.monotonic() < deadline:
            try:
                pid, _st = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                self.pids.clear()
                break
            if pid:
                self.pids.pop(pid, None)
            else:
                time.sleep(0.05)
        for pid in list(self.pids):  # did not stop in time
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)
        self.pids.clear()


@dataclass
class ReactorContext:
    """What one reactor's application gets: its core, how many there are, its network, and the
    cross-core channels (:class:`aiostack.ring.Channel`, one per other core, lock-free SPSC rings
    in shared memory) behind :meth:`submit_to`, :meth:`invoke_on_all` and :meth:`map_reduce` —
    Seastar's ``submit_to``/``sharded<>`` — for the application's own messages, never for a TCP
    flow's packets."""

    core: int
    cores: int
    network: Any
    """A :class:`~aiostack.network.NativeNetwork` (or KernelNetwork with ``--stack kernel``)."""
    channels: dict[int, Any] = field(default_factory=dict)
    handlers: dict[str, Callable[..., Any]] = field(default_factory=dict)

    def serve(self, handlers: dict[str, Callable[..., Any]]) -> None:
        """Make ``handlers`` (name → function or coroutine function) callable from every core,
        this one included."""
        self.handlers.update(handlers)
        for ch in self.channels.values():
            ch.serve(self.handlers)

    async def submit_to(self, core: int, name: str, *args: Any) -> Any:
        """Run handler ``name`` on ``core`` (here, directly, when it is this one) and return its
        result; its exception is raised here (as :class:`aiostack.ring.RemoteError` from another
        core)."""
        if core == self.core:
            result = self.handlers[name](*args)
            return await result if asyncio.iscoroutine(result) else result
        return await self.channels[core].call(name, *args)

    async def invoke_on_all(self, name: str, *args: Any) -> list[Any]:
        """``submit_to`` every core at once; the results in core order."""
        return list(await asyncio.gather(*(self.submit_to(c, name, *args) for c in range(self.cores))))

    async def map_reduce(self, name: str, reduce: Callable[[Any, Any], Any], initial: Any, *args: Any) -> Any:
        """``invoke_on_all`` folded with ``reduce`` from ``initial`` (e.g. a sum over the shards)."""
        return functools.reduce(reduce, await self.invoke_on_all(name, *args), initial)


ReactorApp = Callable[[ReactorContext], Awaitable[None]]


def run_reactors(options: Options, app: ReactorApp, *, device: Driver | None = None) -> int:
    """Run ``app(context)`` in ``options.cores`` reactor processes (the module docstring says how)
    until SIGINT/SIGTERM; returns the parent's exit status. ``device``: a driver with one queue
    per core and a ``take_queue`` (a :class:`~aiostack.drivers.shared_link.SharedMemoryLink`
    end) instead of the one ``options.driver`` names."""
    n = options.cores
    if n > (os.cpu_count() or 1) * 4:
        raise ValueError(f"--cores {n}: far more reactors than this machine's {os.cpu_count()} CPUs")
    with make_channels(n) as channels:
        return _run_reactors(options, app, channels, device)


CHANNEL_CAPACITY = 1 << 20


def _make_channels(n: int) -> dict[int, dict[int, Any]]:
    """One channel per pair of cores, made before the reactors fork (they inherit the shared
    memory and the doorbells): ``channels[i][j]`` is core i's end towards core j."""
    from .ring import Channel

    channels: dict[int, dict[int, Any]] = {k: {} for k in range(n)}
    for i in range(n):
        for j in range(i + 1, n):
            a = Channel.create(f"aiostack-{os.getpid()}-{i}-{j}", CHANNEL_CAPACITY)
            channels[i][j] = a
            channels[j][i] = a.peer()
    return channels


ReactorTarget = Callable[[int, Any, dict[int, Any]], None]
"""What runs in reactor process k: ``target(k, device, channels)`` — ``device`` the opened
multi-queue device (None with ``--stack kernel``), ``channels`` core k's ends of the channels."""


def _run_reactors(
    options: Options, app: ReactorApp, channels: dict[int, dict[int, Any]], device: Driver | None
) -> int:
    if options.stack == "kernel":
        return run_per_core(options, lambda k, _dev, ch: _kernel_reactor(k, options, app, ch), channels, device)
    return run_per_core(options, lambda k, dev, ch: _native_reactor(k, dev, options, app, ch), channels, device)


def run_per_core(
    options: Options, target: ReactorTarget, channels: dict[int, dict[int, Any]], device: Driver | None = None
) -> int:
    """The parent's side of every multi-core mode: open every queue of the device (unless
    ``device`` is given, or the kernel's stack is asked for), fork ``target`` once per core under a
    :class:`Supervisor` with the parent's control socket, until SIGINT/SIGTERM; the exit status."""
    n = options.cores
    host_secret()  # drawn before the reactors fork: they and their successors inherit it
    if options.stack == "kernel":
        return Supervisor(n, lambda k: target(k, None, channels[k])).run()
    with contextlib.ExitStack() as cleanup:
        if device is None:
            device = _open_device(options, cleanup)
        elif device.num_queues != n or not hasattr(device, "take_queue"):
            from .devices import DeviceError

            raise DeviceError(f"--cores {n} needs a device with {n} queues and take_queue(), not {device!r}")
        dev = device
        sup = Supervisor(n, lambda k: target(k, dev, channels[k]))
        sup.control = _parent_control(options, sup)
        if sup.control is not None:
            cleanup.callback(sup.control.close)
        return sup.run()


_host_secret: bytes | None = None


def host_secret() -> bytes:
    """The TCP secret of this host's reactors (RFC 6528 §3 "secretkey"), drawn once per run by
    the parent, as Linux keeps one per host: ISNs and timestamp offsets then increase across
    the reactors and across a restarted reactor, so a peer holding one of its connections in
    TIME-WAIT accepts the successor's SYN for the same ports (RFC 6191 §2) instead of stalling
    it for 2·MSL."""
    global _host_secret
    if _host_secret is None:
        _host_secret = os.urandom(32)
    return _host_secret


def make_channels(n: int) -> contextlib.AbstractContextManager[dict[int, dict[int, Any]]]:
    """The cross-core channels of ``n`` reactors (``channels[i][j]``: core i's end towards j),
    unlinked on exit."""

    @contextlib.contextmanager
    def scope() -> Any:
        channels = _make_channels(n)
        try:
            yield channels
        finally:
            for ends in channels.values():
                for ch in ends.values():
                    with contextlib.suppress(Exception):
                        ch.close(unlink=True)

    return scope()


def _parent_control(options: Options, sup: Supervisor) -> Any:
    """The parent's control socket (``--control``: auto → ``<dir>/<pid>.sock``, PATH → PATH, the
    reactors being at ``PATH.<core>``), or None when off or impossible (said on stderr)."""
    from .control import ParentControl, control_dir

    if options.control == "off":
        return None

    def reactors() -> list[dict[str, Any]]:
        out = sup.reactors()
        for r in out:
            r["socket"] = str(control_dir() / f"{r['pid']}.sock" if options.control == "auto"
                              else f"{options.control}.{r['core']}")
        return out

    try:
        return ParentControl(None if options.control == "auto" else options.control, reactors,
                             labels={"cores": options.cores})
    except OSError as exc:
        print(f"aiostack: no control socket for the parent: {exc}", file=sys.stderr, flush=True)
        return None


def _open_device(options: Options, cleanup: contextlib.ExitStack) -> Driver:
    """Every queue of the device ``options`` name, steered by the flow hash; closed by ``cleanup``."""
    from .devices import open_driver
    from .drivers.buffers import PacketPool

    return open_driver(options, PacketPool(count=16), queues=options.cores, steer=cleanup)


def serve_cores(
    handler: StreamHandler,
    options: Options,
    port: int,
    host: str | None,
    ready: Callable[[Any], None] | None,
    device: Driver | None = None,
) -> None:
    """:func:`aiostack.network.serve` with ``options.cores`` > 1: every reactor serves ``handler``
    on ``port`` (the kernel stack's reactors share it with SO_REUSEPORT)."""

    async def app(ctx: ReactorContext) -> None:
        kernel = ctx.network.name == "kernel"
        bind = host if host is not None else (None if kernel else str(options.addr.ip))
        server = await ctx.network.start_server(handler, bind, port, **({"reuse_port": True} if kernel else {}))
        print(f"reactor {ctx.core} (pid {os.getpid()}) serving on {bind or '0.0.0.0'}:{port} "
              f"({ctx.network.name} stack)", flush=True)
        if ready is not None:
            ready(ctx.network)
        async with server:
            await server.serve_forever()

    sys.exit(run_reactors(options, app, device=device))


def build_reactor_stack(
    k: int, device: Any, options: Options, channels: dict[int, Any]
) -> tuple[Stack, dict[str, Callable[..., Any]]]:
    """Reactor k's own :class:`~aiostack.stack.Stack` on its queue of ``device`` (in the forked
    process, before any loop runs), with ephemeral ports that steer back to it, and the channel
    handlers it must serve (``frame``: what another reactor hands over). Start it with
    :func:`start_reactor_stack` on the running loop."""
    from .devices import with_filter
    from .drivers.buffers import Packet
    from .stack import Stack, pool_for_mtu

    driver = device.take_queue(k, pool=pool_for_mtu(options.mtu, max_count=options.pool_max))
    driver.close_others()
    driver = with_filter(driver, options)
    for ch in channels.values():  # a restarted reactor: resume the rings, fail calls lost with the dead one
        ch.resync()
    stack = Stack(pool=driver.pool, batch=options.batch, busy_poll=options.busy_poll_us / 1e6, secret=host_secret())
    stack.attach(driver, options.addr, name=options.iface if options.driver != "memory" else driver.name)
    if options.gateway:
        stack.set_gateway(str(options.gateway))
    assert stack.tcp is not None
    stack.ip.steer_to(k, options.cores)
    if (k == 0 or options.driver == "xdp") and channels:
        # (AF_XDP: the device, not the steering hash, picks the queue of every frame, ARP too —
        # so whichever reactor gets a reply passes it on)
        # ARP reaches queue 0 only (the steering program): reactor 0 passes the replies on, so
        # every reactor resolves its neighbours (a request any reactor sends is answered here).
        def arp_out(frame: bytes) -> None:
            for ch in channels.values():
                ch.send("frame", frame)

        stack.ip.on_arp_reply = arp_out
    if channels:
        # ICMP is steered by addresses alone: an error about another reactor's flow, or the
        # echo reply to its ping, goes to that reactor (never a TCP segment: those are steered).
        stack.ip.on_foreign_frame = lambda frame, owner: channels[owner].send("frame", frame)

    def frame_in(frame: bytes) -> None:
        """A frame another reactor received for this one (an ARP reply, an ICMP message about
        one of its flows, a datagram it reassembled): processed as if it had arrived here."""
        # a reassembled datagram may be larger than a pool buffer: then a buffer of its own
        pkt = Packet(None, len(frame), 0) if len(frame) > stack.pool.mtu_capacity else stack.pool.try_alloc()
        if pkt is None:
            stack.ip.drops["handed_over_pool_exhausted"] += 1
            return
        try:
            pkt.set_data(frame)
            stack.ip.receive(stack.ip.interfaces[0], pkt, stack.clock())
        finally:
            pkt.free()
        stack.reactor.kick()  # what waited for the answer goes out now

    handlers = {"frame": frame_in}
    if device_steers(options) and channels:
        handlers["stray"] = offer_strays(k, options.cores, stack.tcp, channels, frame_in)
    return stack, handlers


def device_steers(options: Options) -> bool:
    """Whether the device, not the flow hash the stacks compute, picks the queue of every frame
    of ``--cores N``: AF_XDP on a veth without ``--xdp-peer`` (the peer's transmit queue, by the
    kernel's hash of the sending socket, which Linux draws anew on a retransmission timeout and
    on a spurious retransmission — so a connection's frames may move to another queue while it
    lives)."""
    return options.driver == "xdp" and options.xdp_peer is None and options.cores > 1


STRAY_BACKLOG = 4096
"""Messages waiting for room in a channel (its ring full) beyond which a stray segment is dropped,
counted, rather than queued: its sender retransmits."""


def offer_strays(
    k: int, n: int, tcp: Any, channels: dict[int, Any], frame_in: Callable[[bytes], None]
) -> Callable[[bytes, int], None]:
    """Reactor k of ``n`` offers a TCP segment that matches no connection here (and would be
    answered with a reset or dropped at a listener: :attr:`TcpLayer.on_stray`) to the next
    reactor, which processes it as if it had arrived there (``frame_in``) and, if it has no
    connection for it either, offers it on — once round the others: the last one before the
    segment's origin answers it as a single reactor would (RFC 9293 §3.10.7.1), so a segment
    for no connection anywhere still gets exactly one reset. Returns the channel handler
    (``"stray"``: the frame and the core it first arrived at). Seastar forwards packets
    between cores the same way when the device cannot steer them."""
    nxt = (k + 1) % n
    ch = channels[nxt]

    def hand_on(frame: bytes, origin: int) -> bool:
        if ch.backlog >= STRAY_BACKLOG:
            tcp.drops["stray_channel_full"] += 1  # dropped, not reset: it may be another's
            return True
        try:
            ch.send("stray", frame, origin)
        except ConnectionError:  # the channel is closed: this reactor is stopping
            tcp.drops["stray_channel_closed"] += 1
            return True
        tcp.stats["stray_handed_over"] += 1
        return True

    tcp.on_stray = functools.partial(hand_on, origin=k)

    def stray_in(frame: bytes, origin: int) -> None:
        saved = tcp.on_stray
        tcp.on_stray = None if nxt == origin else functools.partial(hand_on, origin=origin)
        try:
            frame_in(frame)
        finally:
            tcp.on_stray = saved

    return stray_in


async def start_reactor_stack(
    k: int, stack: Stack, options: Options, channels: dict[int, Any], handlers: dict[str, Callable[..., Any]]
) -> ControlServer | None:
    """Start reactor k's stack on the running loop, its control socket (``PATH.<k>``), and serve
    ``handlers`` on its channels; returns the control server (close it after the stack)."""
    from .networks import start_control

    await stack.start()
    control = await start_control(stack, options, core=k,
                                  labels={"core": k, "cores": options.cores, "parent": os.getppid()})
    for ch in channels.values():
        ch.serve(handlers)
    for ch in channels.values():
        ch.announce()
    return control


def _native_reactor(
    k: int, device: Any, options: Options, app: ReactorApp, channels: dict[int, Any]
) -> None:
    from .app import run
    from .networks import NativeNetwork

    stack, handlers = build_reactor_stack(k, device, options, channels)

    async def main() -> None:
        control = await start_reactor_stack(k, stack, options, channels, handlers)
        try:
            await app(ReactorContext(k, options.cores, NativeNetwork(stack), channels, dict(handlers)))
        finally:
            if control is not None:
                control.close()
            stack.close()

    run(main)


def _kernel_reactor(k: int, options: Options, app: ReactorApp, channels: dict[int, Any]) -> None:
    """The same application on the kernel's sockets (servers share their port with
    SO_REUSEPORT; the kernel spreads connections by its own hash)."""
    from .app import run
    from .networks import KernelNetwork

    for ch in channels.values():
        ch.resync()

    async def main() -> None:
        for ch in channels.values():
            ch.announce()
        await app(ReactorContext(k, options.cores, KernelNetwork(), channels))

    run(main)
