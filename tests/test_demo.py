"""`make demo`: ``python -m aiostack.demo``.

- ``--memory`` (the no-root path): an aiostack HTTP client against examples/http_server.py's
  handler on a second aiostack stack, over the memory link, in one process; it must exit 0 and
  report the responses, the request rate and both stacks' counters.
- the TAP path (root): curl and wrk from a namespace's kernel against the HTTP example on a TAP,
  then ping and UDP, kept short here (``--seconds 1 --datagrams 50``).
- the wrk report parser, on wrk's own output with and without errors.
"""

from __future__ import annotations

import hashlib
import re
import subprocess

from aiostack.demo import http_example, parse_wrk, pattern_digest
from aiostack.netns import net_unavailable_reason
from conftest import PYTHON, ROOT, need, need_tool


def run_demo(*args: str, timeout: float = 20) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PYTHON, "-m", "aiostack.demo", *args],
        cwd=ROOT, capture_output=True, text=True, timeout=timeout, check=False,
    )


def test_memory_demo_serves_http_between_two_stacks() -> None:
    res = run_demo("--memory", "--requests", "500")
    out = res.stdout
    assert res.returncode == 0, out + res.stderr
    # GET /: the response's headers and body as they arrived
    assert "HTTP/1.1 200 OK\n" in out and "Content-Length: 21\n" in out and "Hello from aiostack!" in out, out
    # GET /bytes/1000000: size and content
    assert "HTTP 200, 1,000,000 bytes in" in out and "content as served" in out, out
    # the pipelined requests and their rate
    assert re.search(r"request rate\s+[\d,]+ requests/s\s+\(500 requests in", out), out
    assert "statuses {200: 500}, 500 with the expected body" in out, out
    # both stacks' counters, as tables
    assert "server (Stack.counters())" in out and "client (Stack.counters())" in out, out
    assert re.search(r"passive_opens[\s│]+1[\s│]*\n", out) and re.search(r"active_opens[\s│]+1[\s│]*\n", out), out
    assert re.search(r"internal_errors[\s│]+0[\s│]*\n", out), out
    assert "demo OK in" in out and "500 pipelined requests at" in out, out


def test_demo_rejects_bad_arguments() -> None:
    for args, option in ((["--requests", "0"], "--requests"), (["--seconds", "31"], "--seconds"),
                         (["--datagrams", "-1"], "--datagrams")):
        res = run_demo("--memory", *args)
        assert res.returncode == 2 and option in res.stderr, res.stderr


def test_tap_demo_curl_wrk_ping_udp() -> None:
    need(net_unavailable_reason())
    for tool, package in (("curl", "curl"), ("wrk", "wrk"), ("ping", "iputils-ping")):
        need_tool(tool, package)
    res = run_demo("--seconds", "1", "--datagrams", "50", timeout=60)
    out = res.stdout
    assert res.returncode == 0, out + res.stderr
    assert "HTTP/1.1 200 OK\n" in out and "Hello from aiostack!" in out, out
    assert "HTTP 200, 1,000,000 bytes in" in out and "content as served" in out, out
    assert re.search(r"request rate\s+[\d,]+ requests/s", out) and "no socket errors, 0 non-2xx" in out, out
    assert "aiostack counters (Stack.counters())" in out and re.search(r"passive_opens[\s│]+\d", out), out
    assert "3/3 pings answered" in out and "50/50 UDP datagrams echoed intact" in out, out
    assert "deleting namespace" in out and "demo OK in" in out, out


WRK_OK = """\
Running 3s test @ http://10.77.0.2:8080/
  1 threads and 50 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     3.22ms    2.14ms  29.19ms   95.59%
    Req/Sec    16.51k     1.67k   19.55k    70.00%
  Latency Distribution
     50%    2.84ms
     75%    3.05ms
     90%    3.91ms
     99%   13.80ms
  49360 requests in 3.01s, 6.03MB read
Requests/sec:  16405.30
Transfer/sec:      2.00MB
"""


def test_parse_wrk() -> None:
    w = parse_wrk(WRK_OK)
    assert w["requests"] == 49360 and w["duration"] == "3.01s" and w["rps"] == 16405.30
    assert w["latency"] == {"avg": "3.22ms", "stdev": "2.14ms", "max": "29.19ms"}
    assert w["p50"] == "2.84ms" and w["p99"] == "13.80ms"
    assert "socket_errors" not in w and "non_2xx" not in w
    bad = WRK_OK.replace(
        "Requests/sec:", "  Socket errors: connect 0, read 3, write 0, timeout 2\n"
        "  Non-2xx or 3xx responses: 7\nRequests/sec:"
    )
    w = parse_wrk(bad)
    assert w["socket_errors"] == {"connect": 0, "read": 3, "write": 0, "timeout": 2}
    assert w["non_2xx"] == 7


def test_pattern_digest_matches_the_example() -> None:
    """The demo checks GET /bytes/N against bytes 0..255 repeated: what examples/http_server.py sends."""
    chunk = http_example()._CHUNK
    for n in (0, 300, len(chunk), 2 * len(chunk) + 1001):
        body = (chunk * (n // len(chunk) + 1))[:n]
        assert pattern_digest(n) == hashlib.sha256(body).hexdigest(), n
