"""Standard options: defaults, flags, TOML file, precedence, and clear errors."""

from __future__ import annotations

import argparse
from ipaddress import IPv4Address, IPv4Interface
from pathlib import Path

import pytest

from aiostack.config import (
    ConfigError,
    Options,
    add_standard_options,
    options_from_args,
    options_from_mapping,
    parse_options,
)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "stack.toml"
    path.write_text(text)
    return path


def error_of(
    capsys: pytest.CaptureFixture[str], argv: list[str], parser: argparse.ArgumentParser | None = None
) -> str:
    with pytest.raises(SystemExit) as exc:
        parse_options(argv, parser)
    assert exc.value.code == 2
    return capsys.readouterr().err


def test_defaults() -> None:
    o = parse_options([])
    assert o == Options()
    assert o.driver == "tap"
    assert o.iface == "aiostack0"
    assert o.addr == IPv4Interface("10.77.0.2/24")
    assert o.gateway is None and o.host_addr is None and o.port is None and o.pcap is None
    assert o.cores == 1 and o.queues == 1
    assert o.mtu == 1500 and o.batch == 64 and o.busy_poll_us == 200
    assert o.config is None and o.extra == {}


def test_command_line() -> None:
    o = parse_options(
        [
            "--driver", "memory", "--iface", "st1", "--addr", "192.168.5.10/24", "--gateway", "192.168.5.1",
            "--host-addr", "192.168.5.1/24", "--port", "8080", "--cores", "2", "--pcap", "out.pcap",
            "--mtu", "9000", "--batch", "256", "--busy-poll-us", "0",
        ]
    )  # fmt: skip
    assert o.driver == "memory" and o.iface == "st1"
    assert o.addr == IPv4Interface("192.168.5.10/24") and isinstance(o.addr, IPv4Interface)
    assert o.gateway == IPv4Address("192.168.5.1") and isinstance(o.gateway, IPv4Address)
    assert o.host_addr == IPv4Interface("192.168.5.1/24")
    assert o.port == 8080 and o.cores == 2
    assert o.queues == 2  # one queue per core unless told
    assert o.pcap == Path("out.pcap") and isinstance(o.pcap, Path)
    assert o.mtu == 9000 and o.batch == 256 and o.busy_poll_us == 0


def test_queues_explicit() -> None:
    assert parse_options(["--cores", "2", "--queues", "4"]).queues == 4


def test_toml_values(tmp_path: Path) -> None:
    cfg = write(
        tmp_path,
        """
        driver = "memory"
        addr = "10.9.0.2/16"
        gateway = "10.9.255.254"
        busy-poll-us = 50
        host_addr = "10.9.0.1/16"
        cores = 2
        pcap = "cap.pcap"
        """,
    )
    o = parse_options(["--config", str(cfg)])
    assert o.driver == "memory"
    assert o.addr == IPv4Interface("10.9.0.2/16")
    assert o.gateway == IPv4Address("10.9.255.254")
    assert o.host_addr == IPv4Interface("10.9.0.1/16")
    assert o.busy_poll_us == 50 and o.cores == 2 and o.queues == 2
    assert o.pcap == Path("cap.pcap")
    assert o.config == cfg


def test_command_line_overrides_toml(tmp_path: Path) -> None:
    cfg = write(tmp_path, 'cores = 2\nmtu = 9000\naddr = "10.9.0.2/16"\n')
    o = parse_options(["--cores", "1", "--config", str(cfg), "--addr", "10.8.0.2/24"])
    assert o.cores == 1  # flag wins, wherever it stands relative to --config
    assert o.addr == IPv4Interface("10.8.0.2/24")
    assert o.mtu == 9000  # not given on the command line: the file's value


def test_aiostack_table(tmp_path: Path) -> None:
    cfg = write(tmp_path, '[aiostack]\niface = "tapx"\nbusy_poll_us = 10\nport = 7\n')
    o = parse_options(["--config", str(cfg)])
    assert o.iface == "tapx" and o.busy_poll_us == 10 and o.port == 7


def test_key_both_at_top_level_and_in_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = write(tmp_path, "busy-poll-us = 1\n[aiostack]\nbusy_poll_us = 2\n")
    assert "busy_poll_us" in error_of(capsys, ["--config", str(cfg)])


def test_unknown_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = write(tmp_path, "[aiostack]\ncoers = 2\n")
    err = error_of(capsys, ["--config", str(cfg)])
    assert "unknown key 'coers'" in err and str(cfg) in err


def test_unknown_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = write(tmp_path, "[server]\nworkers = 2\n")
    assert "unknown key 'server'" in error_of(capsys, ["--config", str(cfg)])


def test_bad_cidr(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert "--addr" in error_of(capsys, ["--addr", "10.0.0.300/24"])
    assert "prefix length" in error_of(capsys, ["--addr", "10.0.0.3"])
    assert "network or broadcast" in error_of(capsys, ["--addr", "10.0.0.0/24"])
    cfg = write(tmp_path, 'addr = "not-an-address/24"\n')
    err = error_of(capsys, ["--config", str(cfg)])
    assert "key 'addr'" in err and "not-an-address" in err


def test_gateway_outside_subnet(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    err = error_of(capsys, ["--addr", "10.0.0.2/24", "--gateway", "10.0.1.1"])
    assert "--gateway" in err and "10.0.0.0/24" in err
    assert "own address" in error_of(capsys, ["--addr", "10.0.0.2/24", "--gateway", "10.0.0.2"])
    cfg = write(tmp_path, 'gateway = "192.168.1.1"\n')
    err = error_of(capsys, ["--config", str(cfg)])
    assert "--gateway" in err and str(cfg) in err
    # ...but fine once the command line moves the subnet to match
    assert parse_options(["--config", str(cfg), "--addr", "192.168.1.5/24"]).gateway == IPv4Address(
        "192.168.1.1"
    )


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["--port", "0"], "--port"),
        (["--port", "70000"], "--port"),
        (["--cores", "0"], "--cores"),
        (["--queues", "0"], "--queues"),
        (["--mtu", "60"], "--mtu"),
        (["--batch", "0"], "--batch"),
        (["--busy-poll-us", "-1"], "--busy-poll-us"),
        (["--driver", "dpdk"], "--driver"),
        (["--cores", "two"], "not an integer"),
        (["--host-addr", "10.77.0.2/24"], "--host-addr"),
    ],
)
def test_bad_values(capsys: pytest.CaptureFixture[str], argv: list[str], needle: str) -> None:
    assert needle in error_of(capsys, argv)


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("cores = 0\n", "key 'cores'"),
        ("cores = 1.5\n", "not an integer"),
        ("cores = true\n", "boolean"),
        ('driver = "dpdk"\n', "key 'driver'"),
        ("port = 65536\n", "key 'port'"),
        ("config = 'other.toml'\n", "config"),
        ("cores = [\n", "not valid TOML"),
    ],
)
def test_bad_toml_values(tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, needle: str) -> None:
    cfg = write(tmp_path, text)
    assert needle in error_of(capsys, ["--config", str(cfg)])


def test_missing_config_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert "cannot read" in error_of(capsys, ["--config", str(tmp_path / "nope.toml")])


def example_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kv")
    parser.add_argument("--shards", type=int, default=4)
    parser.add_argument("--data-dir", type=Path, default=Path("/var/lib/kv"))
    parser.add_argument("--verbose", action="store_true")
    parser.add_argument("--peer", action="append", default=[])
    return parser


def test_example_specific_options_from_toml(tmp_path: Path) -> None:
    cfg = write(
        tmp_path,
        '[aiostack]\ncores = 2\nshards = 16\ndata-dir = "/srv/kv"\nverbose = true\npeer = ["a", "b"]\n',
    )
    o = parse_options(["--config", str(cfg)], example_parser())
    assert o.cores == 2
    assert o.extra == {"shards": 16, "data_dir": Path("/srv/kv"), "verbose": True, "peer": ["a", "b"]}
    o = parse_options(["--config", str(cfg), "--shards", "3"], example_parser())
    assert o.extra["shards"] == 3  # the command line still wins
    o = parse_options([], example_parser())
    assert o.extra == {"shards": 4, "data_dir": Path("/var/lib/kv"), "verbose": False, "peer": []}


def test_example_option_type_checked_in_toml(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = write(tmp_path, 'shards = "many"\n')
    assert "key 'shards'" in error_of(capsys, ["--config", str(cfg)], example_parser())
    cfg = write(tmp_path, 'verbose = "yes"\n')
    assert "true or false" in error_of(capsys, ["--config", str(cfg)], example_parser())


def test_required_example_option_satisfied_by_toml(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def parser() -> argparse.ArgumentParser:
        p = argparse.ArgumentParser(prog="needs")
        p.add_argument("--name", required=True)
        return p

    cfg = write(tmp_path, 'name = "from-file"\n')
    assert parse_options(["--config", str(cfg)], parser()).extra["name"] == "from-file"
    assert "--name" in error_of(capsys, [], parser())


def test_parser_with_standard_options_already_added() -> None:
    parser = argparse.ArgumentParser()
    add_standard_options(parser)
    parser.add_argument("--workers", type=int, default=1)
    o = parse_options(["--workers", "3", "--port", "80"], parser)
    assert o.port == 80 and o.extra == {"workers": 3}


def test_options_from_args_raises_config_error() -> None:
    parser = argparse.ArgumentParser()
    add_standard_options(parser)
    ns = parser.parse_args(["--addr", "10.0.0.2/24", "--gateway", "10.0.9.1"])
    with pytest.raises(ConfigError, match="--gateway"):
        options_from_args(ns)
    ns = parser.parse_args(["--port", "53"])
    assert options_from_args(ns).port == 53


def test_options_from_mapping() -> None:
    o = options_from_mapping({"aiostack": {"busy-poll-us": 0, "addr": "10.1.0.2/24", "gateway": "10.1.0.1"}})
    assert o.busy_poll_us == 0 and o.gateway == IPv4Address("10.1.0.1")
    o = options_from_mapping({"addr": IPv4Interface("10.2.0.2/24"), "pcap": Path("x.pcap")})
    assert o.addr == IPv4Interface("10.2.0.2/24") and o.pcap == Path("x.pcap")
    with pytest.raises(ConfigError, match="unknown key 'coers'"):
        options_from_mapping({"coers": 2})
    assert options_from_mapping({"shards": 2}, allow_extra=True).extra == {"shards": 2}
    with pytest.raises(ConfigError, match="addr"):
        options_from_mapping({"addr": "10.1.0.2/33"})
    with pytest.raises(ValueError):  # ConfigError is a ValueError
        options_from_mapping({"gateway": "10.99.0.1"})


def test_application_default_port(tmp_path: Path) -> None:
    assert parse_options([], default_port=7).port == 7
    assert parse_options(["--port", "9"], default_port=7).port == 9
    cfg = write(tmp_path, "port = 8\n")
    assert parse_options(["--config", str(cfg)], default_port=7).port == 8
    assert parse_options([]).port is None
