"""Unmodified asyncio applications on aiostack over a TAP, in test-made namespaces: an aiohttp app
under ``aiostack run`` (curl, wrk, ab, a websocket round trip, TLS, two reactors), Starlette under
uvicorn (through ``aiostack run`` and through ``--loop aiostack:new_event_loop``), an
aiohttp client through aiostack beside redis-py on loopback, and UDP through
``create_datagram_endpoint``."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
from pathlib import Path

import pytest

from aiostack.netns import NetNS
from conftest import PYTHON, ROOT, example, need_tool, wait_line
from tlscerts import self_signed

pytestmark = pytest.mark.net

HOST = "10.77.0.1"
STACK = "10.77.0.2"
TAP_ARGS = ["--driver", "tap", "--iface", "aiostack0", "--addr", f"{STACK}/24", "--host-addr", f"{HOST}/24"]
APPS = ROOT / "tests" / "apps"
EXAMPLES = ROOT / "examples"
AIOSTACK = [PYTHON, "-m", "aiostack"]


def aiostack_run(ns: NetNS, program: list[str], *extra: str, control: str = "off") -> subprocess.Popen[bytes]:
    return ns.popen([*AIOSTACK, "run", *TAP_ARGS, "--control", control, *extra, "--", *program],
                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def finish(proc: subprocess.Popen[bytes], ok_codes: tuple[int, ...] = (0,)) -> str:
    """SIGTERM (as a service manager stops it) and the rest of its output; it must end cleanly."""
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=30)
    text = out.decode(errors="replace")
    assert proc.returncode in ok_codes, text
    assert "Traceback" not in text, text
    return text


def check_wrk(ns: NetNS, url: str, connections: int = 20, threads: int = 1) -> int:
    wrk = need_tool("wrk", "wrk")
    out = ns.run([wrk, f"-t{threads}", f"-c{connections}", "-d2s", "--timeout", "5s", url], timeout=60).stdout
    assert "Socket errors" not in out, out  # wrk prints this line only when there were errors
    assert "Non-2xx" not in out, out
    requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    assert requests > 100, out
    return requests


def curl(ns: NetNS, *args: str) -> subprocess.CompletedProcess[str]:
    return ns.run([need_tool("curl", "curl"), "-sS", "--max-time", "20", *args], timeout=60, check=False)


def test_aiohttp_app_under_aiostack_run(netns: NetNS) -> None:
    proc = aiostack_run(netns, [example("aiohttp_app.py"), "--port", "8080"])
    wait_line(proc, "Running on")
    base = f"http://{STACK}:8080"
    res = curl(netns, "-i", f"{base}/")
    assert res.stdout.startswith("HTTP/1.1 200 OK") and res.stdout.endswith("Hello from aiohttp\n"), res
    doc = json.loads(curl(netns, f"{base}/json").stdout)
    assert doc == {"ok": True, "peer": HOST, "items": list(range(10))}
    res = curl(netns, "-o", "/dev/null", "-w", "%{http_code} %{size_download}", f"{base}/stream/3000000")
    assert res.stdout == "200 3000000", res
    res = curl(netns, f"{base}/file")  # FileResponse: loop.sendfile's fallback on an aiostack transport
    assert res.stdout == Path(example("aiohttp_app.py")).read_text(), res.stderr
    check_wrk(netns, f"{base}/json")
    ab = need_tool("ab", "apache2-utils")
    out = netns.run([ab, "-q", "-n", "1000", "-c", "10", "-s", "10", f"{base}/"], timeout=120).stdout
    assert re.search(r"Complete requests:\s+1000\b", out) and re.search(r"Failed requests:\s+0\b", out), out
    assert "Non-2xx" not in out, out
    ws = netns.run([PYTHON, str(APPS / "ws_client.py"), f"ws://{STACK}:8080/ws", "1000"], timeout=120, check=False)
    assert ws.returncode == 0 and json.loads(ws.stdout) == {"sent": 1000, "echoed_intact": 1000}, ws
    finish(proc)


def test_starlette_under_uvicorn_via_aiostack_run(netns: NetNS) -> None:
    proc = aiostack_run(netns, ["uvicorn", "--app-dir", str(EXAMPLES), "starlette_app:app", "--host", "0.0.0.0",
                                "--port", "8000", "--no-access-log"])
    wait_line(proc, "Uvicorn running")
    res = curl(netns, f"http://{STACK}:8000/items/7")
    assert json.loads(res.stdout) == {"item": 7, "client": HOST}, res
    check_wrk(netns, f"http://{STACK}:8000/")
    # uvicorn ends by re-raising the SIGTERM it handled (after a clean shutdown): 128 + 15
    out = finish(proc, ok_codes=(0, -signal.SIGTERM, 128 + signal.SIGTERM))
    assert "Application shutdown complete" in out, out


def test_uvicorn_loop_factory_with_env_options(netns: NetNS) -> None:
    """No launcher: uvicorn's own ``--loop module:function`` with the options in $AIOSTACK_ARGS."""
    env = {**os.environ, "AIOSTACK_ARGS": " ".join([*TAP_ARGS, "--control", "off"])}
    proc = netns.popen([PYTHON, "-m", "uvicorn", "--loop", "aiostack:new_event_loop", "--app-dir",
                        str(EXAMPLES), "starlette_app:app", "--host", STACK, "--port", "8000", "--no-access-log"],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
    wait_line(proc, "Uvicorn running")
    res = curl(netns, f"http://{STACK}:8000/")
    assert res.stdout == "Hello from Starlette\n", res
    finish(proc, ok_codes=(0, -signal.SIGTERM, 128 + signal.SIGTERM))


def test_aiohttp_client_through_aiostack_beside_redis_on_loopback(netns: NetNS, tmp_path: Path) -> None:
    redis_server = need_tool("redis-server", "redis-server")
    redis = netns.popen([redis_server, "--port", "16399", "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                         "--dir", str(tmp_path)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    wait_line(redis, "Ready to accept connections")
    # the kernel's HTTP server, reached from aiostack through the TAP (its address appears with it)
    server = netns.popen([PYTHON, str(APPS / "check_server.py"), "0.0.0.0", "8081"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    wait_line(server, "listening")
    res = netns.run([*AIOSTACK, "run", *TAP_ARGS, "--control", "off", "--", str(APPS / "client_and_redis.py"),
                     f"http://{HOST}:8081", "1000", "16399"], timeout=240, check=False)
    assert res.returncode == 0, res.stdout + res.stderr
    summary = json.loads(res.stdout.strip().splitlines()[-1])
    assert summary["fetched_ok"] == 1000 and summary["redis_ok"] == 500, summary
    assert summary["loop"] == "aiostack.loop.Loop"
    assert summary["aiostack_loop_counters"]["connected"] >= 1, summary  # the fetches went through aiostack
    for proc in (server, redis):
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)


def test_tls_aiohttp_app(netns: NetNS, tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path, "aiostack-test", STACK)
    other, _ = self_signed(tmp_path, "someone-else", STACK)
    proc = aiostack_run(netns, [example("aiohttp_app.py"), "--port", "8443", "--cert", str(cert),
                                "--key", str(key)])
    wait_line(proc, "Running on")
    res = curl(netns, "--cacert", str(cert), f"https://{STACK}:8443/json")
    assert res.returncode == 0 and json.loads(res.stdout)["ok"] is True, res
    res = curl(netns, "--cacert", str(cert), "-o", "/dev/null", "-w", "%{size_download}",
               f"https://{STACK}:8443/stream/2000000")
    assert res.stdout == "2000000", res
    res = curl(netns, "--cacert", str(other), f"https://{STACK}:8443/json")
    assert res.returncode == 60, res  # CURLE_PEER_FAILED_VERIFICATION: "SSL certificate problem"
    assert "certificate" in res.stderr, res.stderr
    # the server keeps serving after a failed handshake
    res = curl(netns, "--cacert", str(cert), f"https://{STACK}:8443/")
    assert res.stdout == "Hello from aiohttp\n", res
    finish(proc)


def test_udp_datagram_endpoint_roundtrips_with_kernel(netns: NetNS) -> None:
    proc = aiostack_run(netns, [str(APPS / "udp_echo_app.py"), "9999"])
    line = wait_line(proc, "listening")
    assert "aiostack.loop" in line, line
    res = netns.run([PYTHON, example("udp_client.py"), STACK, "9999", "--count", "1000", "--max-size", "1400"],
                    timeout=180, check=False)
    assert res.returncode == 0, res.stdout + res.stderr
    summary = json.loads(res.stdout.strip().splitlines()[-1])
    assert summary["echoed_intact"] == 1000 and summary["mismatched"] == 0, summary
    finish(proc)


def test_two_reactors_share_the_aiohttp_app(netns: NetNS, tmp_path: Path) -> None:
    """``--cores 2``: wrk's connections spread over both reactors, and both serve. An aiohttp app exports no counter
    of its own, so they are counted from the stack side: the TCP segments each reactor received.
    wrk keeps each connection busy with one small request at a time — one segment per request,
    its ACK of the previous response riding on it — so segments per reactor are requests per
    reactor up to the handshakes' and closes' few; each reactor's accepted connections (the
    loop's own counter) are shown beside them."""
    control = str(tmp_path / "ctl")
    proc = aiostack_run(netns, [example("aiohttp_app.py"), "--port", "8080"], "--cores", "2", control=control)
    wait_line(proc, "Running on")
    wait_line(proc, "Running on")
    res = curl(netns, f"http://{STACK}:8080/")
    assert res.stdout == "Hello from aiohttp\n", res
    # two wrk threads: wrk shares both cores with the reactors, one thread beside each, so
    # neither reactor loses its core to the client more than the other does
    check_wrk(netns, f"http://{STACK}:8080/", connections=50, threads=2)
    stat = subprocess.run([*AIOSTACK, "stat", "--json", "--socket", f"{control}.0", "--socket", f"{control}.1"],
                          capture_output=True, text=True, timeout=60)
    assert stat.returncode == 0, stat.stdout + stat.stderr
    instances = json.loads(stat.stdout)["instances"]
    by_core = {i["core"]: i["counters"] for i in instances}
    received = {k: c["tcp"]["stats"]["segments_in"] for k, c in by_core.items()}
    total = sum(received.values())
    accepted = {k: c["app"]["loop"]["accepted"] for k, c in by_core.items()}
    print("segments in per reactor:", received, "accepted:", accepted)
    assert set(received) == {0, 1} and total > 0, received
    # The flows spread by the steering hash (50 connections: each reactor gets at least a fifth,
    # but for a chance of ~1e-5); the segments each serves depend on how the machine shares its
    # CPUs between the reactors and wrk, so they only have to be there.
    for k, n in received.items():
        assert n > 0 and accepted[k] >= 0.2 * sum(accepted.values()), (received, accepted)
    finish(proc)
