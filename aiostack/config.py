"""The standard options every aiostack application takes, from the command line and a TOML file.

The counterpart of F-Stack's ``config.ini`` and Seastar's application options: one set of flags
(driver, interface, addresses, cores, queues, burst size, busy-poll budget, capture file) so that
every example and every ``aiostack.serve()`` application is configured the same way.

Precedence, lowest first: built-in defaults, then ``--config FILE`` (TOML), then flags given on the
command line. The file's keys are the option names with dashes or underscores (``busy-poll-us`` or
``busy_poll_us``), at top level or in an ``[aiostack]`` table::

    [aiostack]
    driver = "tap"
    addr = "10.77.0.2/24"
    gateway = "10.77.0.1"
    cores = 2
    busy-poll-us = 100
    # options the example added to the parser itself are accepted too
    shards = 8

Applications add their own arguments to the same :class:`argparse.ArgumentParser` before calling
:func:`parse_options`; those land in :attr:`Options.extra` and may be set from the file as well.
A key the parser does not know is an error naming the key (a typo must not be ignored silently).

Errors go through ``parser.error`` (exit status 2 with the usage line) on the argparse path, and
raise :class:`ConfigError` (a ``ValueError``) from :func:`options_from_args`,
:func:`options_from_mapping` and :meth:`Options.validate`.
"""

from __future__ import annotations

import argparse
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from ipaddress import IPv4Address, IPv4Interface
from pathlib import Path
from typing import Any

__all__ = [
    "DRIVERS",
    "STACKS",
    "ConfigError",
    "Options",
    "add_standard_options",
    "load_toml",
    "options_from_args",
    "options_from_mapping",
    "parse_options",
]

DRIVERS = ("tap", "packet", "xdp", "memory")
"""Drivers selectable with ``--driver``: ``tap`` creates a TAP device named ``--iface``;
``packet`` drives an existing interface ``--iface`` (one end of a veth pair) through AF_PACKET
rings, ``xdp`` through AF_XDP sockets and an XDP program; ``memory`` needs a peer passed in code."""

XDP_MODES = ("auto", "native", "generic")
"""``--xdp-mode``: native XDP with a generic (skb) fallback, or either one only."""
XDP_BINDS = ("auto", "copy", "zerocopy")
"""``--xdp-bind``: zero-copy AF_XDP with a copy-mode fallback, or either one only."""

STACKS = ("native", "kernel")
"""``--stack``: aiostack itself, or the same application on the OS's sockets (uvloop), as
Seastar's ``--network-stack native|posix``."""

TABLE = "aiostack"
"""The TOML table that may hold the options (they may also sit at top level)."""


class ConfigError(ValueError):
    """A bad option value or configuration file (the non-argparse path)."""


@dataclass
class Options:
    """The standard options, typed. ``extra`` holds the application's own options by dest name."""

    stack: str = "native"
    driver: str = "tap"
    iface: str = "aiostack0"
    addr: IPv4Interface = field(default_factory=lambda: IPv4Interface("10.77.0.2/24"))
    gateway: IPv4Address | None = None
    host_addr: IPv4Interface | None = None
    port: int | None = None
    cores: int = 1
    pcap: Path | None = None
    control: str = "auto"
    """The control socket ``aiostack stat`` reads: "auto" (a socket named after the process in
    :func:`aiostack.control.control_dir`), "off", or a path."""
    mtu: int = 1500
    queues: int | None = None  # None: one queue per core (resolved in __post_init__)
    batch: int = 64
    busy_poll_us: int = 200
    pool_max: int = 65536
    """Most packet buffers the reactor's pool grows to (4,096 are made at start; growth, 512 at a
    time, only when all are in flight at once; ``pool.grows`` counts it). 65,536 2,240-byte
    buffers are 147 MB."""
    filter: list[str] = field(default_factory=list)
    """Ingress filter rules (``aiostack.ip.filter``: ``drop src 10.0.0.0/8`` ...), in order."""
    xdp_mode: str = "auto"
    xdp_bind: str = "auto"
    xdp_frame_size: int = 2048
    xdp_frames: int = 4096
    xdp_peer: str | None = None
    """The kernel's end of the veth ``--driver xdp`` reads: its transmit queue is then picked by the
    flow hash, so ``--cores N`` steers deterministically."""
    xdp_peer_netns: str | None = None
    config: Path | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.queues is None:
            self.queues = self.cores

    def validate(self) -> Options:
        """Check values and their relations; raise :class:`ConfigError` naming the option."""
        if self.stack not in STACKS:
            raise ConfigError(f"--stack: {self.stack!r} is not one of {', '.join(STACKS)}")
        if self.driver not in DRIVERS:
            raise ConfigError(f"--driver: {self.driver!r} is not one of {', '.join(DRIVERS)}")
        if (
            not self.iface
            or len(self.iface) > 15
            or "/" in self.iface
            or any(c.isspace() for c in self.iface)
        ):
            # IFNAMSIZ is 16 including the NUL; the kernel refuses '/' and whitespace in names.
            raise ConfigError(f"--iface: {self.iface!r} is not a valid interface name (1-15 chars)")
        _check_host_interface("--addr", self.addr)
        net = self.addr.network
        if self.gateway is not None:
            if self.gateway not in net:
                raise ConfigError(f"--gateway: {self.gateway} is not inside the --addr subnet {net}")
            if self.gateway == self.addr.ip:
                raise ConfigError(f"--gateway: {self.gateway} is the stack's own address")
            if net.prefixlen < 31 and self.gateway in (net.network_address, net.broadcast_address):
                raise ConfigError(f"--gateway: {self.gateway} is not a host address of {net}")
        if self.host_addr is not None:
            _check_host_interface("--host-addr", self.host_addr)
            if self.host_addr.ip == self.addr.ip:
                raise ConfigError(f"--host-addr: {self.host_addr.ip} is also the stack's address (--addr)")
        if self.port is not None and not 1 <= self.port <= 65535:
            raise ConfigError(f"--port: {self.port} is out of range 1-65535")
        if self.cores < 1:
            raise ConfigError(f"--cores: must be >= 1, not {self.cores}")
        if self.queues is None or self.queues < 1:
            raise ConfigError(f"--queues: must be >= 1, not {self.queues}")
        if not 68 <= self.mtu <= 65535:
            raise ConfigError(f"--mtu: {self.mtu} is out of range 68-65535 (RFC 791 minimum is 68)")
        if self.batch < 1:
            raise ConfigError(f"--batch: must be >= 1, not {self.batch}")
        if self.busy_poll_us < 0:
            raise ConfigError(f"--busy-poll-us: must be >= 0, not {self.busy_poll_us}")
        if self.pool_max < 4096:
            raise ConfigError(f"--pool-max: must be >= 4096 (the buffers made at start), not {self.pool_max}")
        from .ip.filter import parse_rule

        if self.filter and self.stack != "native":
            raise ConfigError("--filter: the ingress filter is aiostack's (--stack native); the kernel's stack "
                              "has its own (nftables)")
        for rule in self.filter:
            try:
                parse_rule(rule)
            except ValueError as exc:
                raise ConfigError(f"--filter: {exc}") from None
        if self.xdp_mode not in XDP_MODES:
            raise ConfigError(f"--xdp-mode: {self.xdp_mode!r} is not one of {', '.join(XDP_MODES)}")
        if self.xdp_bind not in XDP_BINDS:
            raise ConfigError(f"--xdp-bind: {self.xdp_bind!r} is not one of {', '.join(XDP_BINDS)}")
        if self.xdp_frame_size not in (2048, 4096):
            raise ConfigError(f"--xdp-frame-size: must be 2048 or 4096, not {self.xdp_frame_size}")
        if self.xdp_frames < 16 or self.xdp_frames & (self.xdp_frames - 1):
            raise ConfigError(f"--xdp-frames: must be a power of two >= 16, not {self.xdp_frames}")
        if self.xdp_peer is not None and (not self.xdp_peer or len(self.xdp_peer) > 15 or "/" in self.xdp_peer
                                          or any(c.isspace() for c in self.xdp_peer)):
            raise ConfigError(f"--xdp-peer: {self.xdp_peer!r} is not a valid interface name (1-15 chars)")
        return self


def _check_host_interface(flag: str, iface: IPv4Interface) -> None:
    net = iface.network
    if net.prefixlen < 31 and iface.ip in (net.network_address, net.broadcast_address):
        raise ConfigError(f"{flag}: {iface} is the network or broadcast address of {net}, not a host")
    if iface.ip.is_unspecified or iface.ip.is_multicast:
        raise ConfigError(f"{flag}: {iface.ip} cannot be a host address")


# -- argparse types: raise ArgumentTypeError so argparse prints "argument --x: <message>" ----------


def _cidr(text: str) -> IPv4Interface:
    if "/" not in text:
        raise argparse.ArgumentTypeError(f"{text!r} needs a prefix length, e.g. 10.77.0.2/24")
    try:
        return IPv4Interface(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not an IPv4 address/prefix: {exc}") from None


def _ipv4(text: str) -> IPv4Address:
    try:
        return IPv4Address(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not an IPv4 address: {exc}") from None


def _int_in(low: int, high: int | None = None) -> Any:
    def convert(text: str) -> int:
        try:
            value = int(text, 10)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if value < low or (high is not None and value > high):
            bound = f"{low}-{high}" if high is not None else f">= {low}"
            raise argparse.ArgumentTypeError(f"{value} is out of range ({bound})")
        return value

    convert.__name__ = "int"
    return convert


_STANDARD = {f.name for f in fields(Options)} - {"extra"}


def add_standard_options(parser: argparse.ArgumentParser) -> None:
    """Add the standard options (in an "aiostack" group) to ``parser``."""
    g = parser.add_argument_group("aiostack", "user-space stack options (also settable in --config)")
    g.add_argument(
        "--stack",
        choices=STACKS,
        default="native",
        help="native: aiostack; kernel: the same application on the OS's sockets via uvloop (default: native)",
    )
    g.add_argument(
        "--driver",
        choices=DRIVERS,
        default="tap",
        help="network device driver: tap (creates a TAP device), packet (AF_PACKET on an existing "
        "interface, e.g. one end of a veth pair), xdp (AF_XDP on an existing interface) (default: tap)",
    )
    g.add_argument(
        "--iface",
        default="aiostack0",
        metavar="NAME",
        help="device name: the TAP to create, or the existing interface for --driver packet or xdp "
        "(default: aiostack0)",
    )
    g.add_argument(
        "--addr",
        type=_cidr,
        default=IPv4Interface("10.77.0.2/24"),
        metavar="CIDR",
        help="the stack's address and subnet (default: 10.77.0.2/24)",
    )
    g.add_argument("--gateway", type=_ipv4, default=None, metavar="IP", help="default gateway (optional)")
    g.add_argument(
        "--host-addr",
        type=_cidr,
        default=None,
        metavar="CIDR",
        help="address for the kernel side of the TAP (optional)",
    )
    g.add_argument(
        "--port",
        type=_int_in(1, 65535),
        default=None,
        metavar="N",
        help="port to serve on (default: %(default)s)",
    )
    g.add_argument(
        "--cores", type=_int_in(1), default=1, metavar="N", help="reactors, one per core (default: 1)"
    )
    g.add_argument("--pcap", type=Path, default=None, metavar="FILE", help="capture every frame to FILE")
    g.add_argument(
        "--control", default="auto", metavar="PATH",
        help="control socket for `aiostack stat`: auto (default), off, or a path",
    )
    g.add_argument("--mtu", type=_int_in(68, 65535), default=1500, metavar="N", help="MTU (default: 1500)")
    g.add_argument(
        "--queues", type=_int_in(1), default=None, metavar="N", help="device queues (default: one per core)"
    )
    g.add_argument("--batch", type=_int_in(1), default=64, metavar="N", help="rx burst size (default: 64)")
    g.add_argument(
        "--pool-max", type=_int_in(4096), default=65536, metavar="N",
        help="most packet buffers the pool grows to when all 4,096 made at start are in flight (default: 65536)",
    )
    g.add_argument(
        "--busy-poll-us",
        type=_int_in(0),
        default=200,
        metavar="N",
        help="keep polling this long without traffic before sleeping on the fd; "
        "0 never busy-polls (default: 200)",
    )
    g.add_argument(
        "--filter", action="append", default=[], metavar="RULE",
        help="ingress filter rule, repeatable, checked in order: ACTION [src PREFIX] [dst PREFIX] "
        "[proto tcp|udp|icmp|N] [sport N[-M]] [dport N[-M]] [flags [!]syn,...] with ACTION drop, pass "
        "or count (in the XDP program with --driver xdp)",
    )
    g.add_argument("--xdp-mode", choices=XDP_MODES, default="auto",
                   help="XDP attach mode: auto (native, else generic), native, generic (default: auto)")
    g.add_argument("--xdp-bind", choices=XDP_BINDS, default="auto",
                   help="AF_XDP bind mode: auto (zero-copy, else copy), copy, zerocopy (default: auto)")
    g.add_argument("--xdp-frame-size", type=_int_in(2048, 4096), default=2048, metavar="N",
                   help="UMEM chunk size, 2048 or 4096 (default: 2048)")
    g.add_argument("--xdp-frames", type=_int_in(16), default=4096, metavar="N",
                   help="UMEM chunks per queue, a power of two, half receive, half transmit (default: 4096)")
    g.add_argument("--xdp-peer", default=None, metavar="NAME",
                   help="with --driver xdp on a veth: the kernel's end, whose transmit queue (hence our "
                   "receive queue) the flow hash then picks, for deterministic --cores steering")
    g.add_argument("--xdp-peer-netns", default=None, metavar="NAME",
                   help="the network namespace --xdp-peer is in (default: the driver's)")
    g.add_argument(
        "--config", type=Path, default=None, metavar="FILE", help="TOML file of defaults for these"
    )


def options_from_args(ns: argparse.Namespace) -> Options:
    """Build validated :class:`Options` from a parsed namespace; raise :class:`ConfigError` if bad.

    Namespace attributes that are not standard options go to :attr:`Options.extra`.
    """
    values = vars(ns)
    std = {k: v for k, v in values.items() if k in _STANDARD}
    extra = {k: v for k, v in values.items() if k not in _STANDARD}
    return Options(**std, extra=extra).validate()


def options_from_mapping(mapping: Mapping[str, Any], *, allow_extra: bool = False) -> Options:
    """Build validated :class:`Options` from plain values (a loaded TOML document, or keyword
    arguments of ``aiostack.serve()``) without argparse.

    Keys may use dashes or underscores, at top level or in an ``[aiostack]`` table; strings are
    converted as on the command line, and already-typed values (an ``IPv4Interface``, a ``Path``)
    are accepted as they are. An unknown key raises :class:`ConfigError` naming it, unless
    ``allow_extra``, which sends it to :attr:`Options.extra`.
    """
    parser = argparse.ArgumentParser(add_help=False)
    add_standard_options(parser)
    actions = _actions_by_name(parser)
    std: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    for key, value in _flatten(mapping, "options").items():
        name = key.replace("-", "_")
        action = actions.get(name)
        if action is None:
            if not allow_extra:
                known = ", ".join(sorted(k.replace("_", "-") for k in actions))
                raise ConfigError(f"options: unknown key '{key}' (known: {known})")
            extra[name] = value
        elif value is None or isinstance(value, IPv4Interface | IPv4Address | Path):
            std[action.dest] = value
        else:
            std[action.dest] = _convert(action, f"options: key '{key}'", value)
    return Options(**std, extra=extra).validate()


def load_toml(path: Path | str) -> dict[str, Any]:
    """Read a TOML file; raise :class:`ConfigError` on a missing file or bad TOML."""
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except OSError as exc:
        raise ConfigError(f"--config: cannot read {path}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"--config: {path} is not valid TOML: {exc}") from None


def parse_options(
    argv: Sequence[str] | None = None,
    parser: argparse.ArgumentParser | None = None,
    *,
    default_port: int | None = None,
) -> Options:
    """Parse ``argv`` (default ``sys.argv[1:]``) with ``parser`` (a new one if None), the standard
    options added unless present; apply ``--config FILE`` as defaults below the command line.

    ``default_port`` is the application's own default for ``--port`` (an echo server's 7), used
    when neither the command line nor the file sets one.

    Every problem (bad value, unknown key in the file, gateway outside the subnet) is reported by
    ``parser.error``: a usage line, a message naming the option, exit status 2.
    """
    if parser is None:
        parser = argparse.ArgumentParser()
    if "--driver" not in parser._option_string_actions:
        add_standard_options(parser)
    if default_port is not None:
        parser._option_string_actions["--port"].default = default_port  # shown by --help too

    # Find --config first (a throwaway parser that ignores everything else), so the file's values
    # can become defaults that explicit flags then override.
    pre = argparse.ArgumentParser(add_help=False, allow_abbrev=parser.allow_abbrev)
    pre.add_argument("--config", type=Path, default=None)
    known, _ = pre.parse_known_args(argv)

    preset = argparse.Namespace()
    relaxed: list[argparse.Action] = []
    if known.config is not None:
        try:
            from_file = _file_values(parser, load_toml(known.config), str(known.config))
        except ConfigError as exc:
            parser.error(str(exc))
        for dest, value in from_file.items():
            setattr(preset, dest, value)  # argparse only fills defaults for attributes not present
        for action in parser._actions:
            if action.required and action.dest in from_file:
                action.required = False  # supplied by the file
                relaxed.append(action)
    try:
        ns = parser.parse_args(argv, namespace=preset)
    finally:
        for action in relaxed:
            action.required = True
    if ns.config != known.config:  # cannot happen with ordinary spellings; never ignore a file
        parser.error(
            f"--config {ns.config}: could not be read before the other options; pass it as --config FILE"
        )
    try:
        return options_from_args(ns)
    except ConfigError as exc:
        where = f" (in {ns.config})" if ns.config is not None else ""
        parser.error(f"{exc}{where}")


# -- helpers ---------------------------------------------------------------------------------------


def _actions_by_name(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    """Settable actions by dest and by each long option name with dashes made underscores."""
    out: dict[str, argparse.Action] = {}
    for action in parser._actions:
        if action.dest in (argparse.SUPPRESS, "help", "version", "config") or isinstance(
            action, argparse._HelpAction | argparse._VersionAction
        ):
            continue
        out[action.dest] = action
        for opt in action.option_strings:
            if opt.startswith("--"):
                out[opt[2:].replace("-", "_")] = action
    return out


def _flatten(doc: Mapping[str, Any], source: str) -> dict[str, Any]:
    """Merge the top level and the ``[aiostack]`` table; a key given in both is an error."""
    top = dict(doc)
    table = top.pop(TABLE, None)
    if table is None:
        return top
    if not isinstance(table, Mapping):
        raise ConfigError(f"{source}: '{TABLE}' must be a table")
    for key in table:
        if key in top or key.replace("-", "_") in {k.replace("-", "_") for k in top}:
            raise ConfigError(f"{source}: key '{key}' is given both at top level and in [{TABLE}]")
    top.update(table)
    return top


def _file_values(parser: argparse.ArgumentParser, doc: Mapping[str, Any], source: str) -> dict[str, Any]:
    actions = _actions_by_name(parser)
    out: dict[str, Any] = {}
    for key, value in _flatten(doc, source).items():
        name = key.replace("-", "_")
        if name == "config":
            raise ConfigError(f"{source}: key 'config' cannot be set from a config file")
        action = actions.get(name)
        if action is None:
            known = sorted(k.replace("_", "-") for k in actions)
            raise ConfigError(f"{source}: unknown key '{key}' (known: {', '.join(known)})")
        if action.dest in out:
            raise ConfigError(f"{source}: key '{key}' is given twice")
        out[action.dest] = _convert(action, f"{source}: key '{key}'", value)
    return out


def _convert(action: argparse.Action, where: str, value: Any) -> Any:
    """Convert a TOML value as argparse would convert the same flag's text, with clear errors."""
    try:
        if isinstance(action, argparse._StoreTrueAction | argparse._StoreFalseAction):
            if not isinstance(value, bool):
                raise ConfigError(f"{where}: expected true or false, not {value!r}")
            return value
        if isinstance(action, argparse._StoreConstAction | argparse._CountAction):
            if (
                isinstance(action, argparse._CountAction)
                and isinstance(value, int)
                and not isinstance(value, bool)
            ):
                return value
            raise ConfigError(f"{where}: cannot be set from a file")
        if (
            action.nargs in ("*", "+")
            or isinstance(action.nargs, int)
            or isinstance(action, argparse._AppendAction)
        ):
            if not isinstance(value, list):
                raise ConfigError(f"{where}: expected a list, not {value!r}")
            return [_convert_one(action, where, v) for v in value]
        return _convert_one(action, where, value)
    except argparse.ArgumentTypeError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def _convert_one(action: argparse.Action, where: str, value: Any) -> Any:
    if isinstance(value, dict | list):
        raise ConfigError(f"{where}: expected a single value, not {value!r}")
    if isinstance(value, bool):
        raise ConfigError(f"{where}: expected a value, not a boolean")
    convert = action.type
    if convert is None:
        result = value if isinstance(value, str) else str(value)
    elif convert in (int, float) and isinstance(value, int | float):
        if convert is int and isinstance(value, float):
            raise ConfigError(f"{where}: expected an integer, not {value!r}")
        result = convert(value)
    else:
        text = value if isinstance(value, str) else str(value)
        try:
            result = convert(text)  # type: ignore[operator]
        except argparse.ArgumentTypeError:
            raise
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{where}: invalid value {value!r} ({exc})") from None
    if action.choices is not None and result not in action.choices:
        choices = ", ".join(map(str, action.choices))
        raise ConfigError(f"{where}: {result!r} is not one of {choices}")
    return result
