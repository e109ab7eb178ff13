"""The benchmark harness's pure parts (benchmarks/workloads.py, report.py, run.py): parsing what
wrk, ab, iperf3 and bulk.py print (captured samples), medians, ratios and targets, the markdown and
README update, the plans. No network, no timing."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from conftest import ROOT

if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks import report, run, workloads

WRK_SAMPLE = """\
Running 5s test @ http://10.78.1.2:8080/
  1 threads and 50 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     6.26ms    3.70ms  33.37ms   89.82%
    Req/Sec     8.35k     2.22k   11.86k    72.50%
  Latency Distribution
     50%    6.93ms
     75%    7.36ms
     90%    9.51ms
     99%   20.69ms
  33317 requests in 4.01s, 4.07MB read
Requests/sec:   8303.27
Transfer/sec:      1.01MB
WRKJSON {"requests":33317,"duration_us":4010000,"bytes":4267000,"errors":{"connect":0,"read":0,"write":0,\
"status":0,"timeout":0},"latency_us":{"mean":6260.5,"max":33370.0,"p50":6930.0,"p90":9510.0,"p99":20690.0,\
"p99.9":31000.0}}
"""

WRK_ERRORS = """\
Running 3s test @ http://10.78.1.2:8080/
  1 threads and 50 connections
  1200 requests in 3.00s, 150.00KB read
  Socket errors: connect 0, read 3, write 0, timeout 2
  Non-2xx or 3xx responses: 7
Requests/sec:    400.00
Transfer/sec:     50.00KB
"""

AB_SAMPLE = """\
Server Software:        aiostack
Server Hostname:        10.78.6.2
Server Port:            8080

Document Path:          /
Document Length:        21 bytes

Concurrency Level:      50
Time taken for tests:   3.022 seconds
Complete requests:      1429
Failed requests:        0
Total transferred:      178473 bytes
HTML transferred:       30471 bytes
Requests per second:    472.92 [#/sec] (mean)
Time per request:       105.725 [ms] (mean)
Time per request:       2.115 [ms] (mean, across all concurrent requests)
"""

IPERF3_SAMPLE = json.dumps({
    "start": {},
    "intervals": [],
    "end": {
        "sum_sent": {"start": 0, "end": 3.0, "seconds": 3.0, "bytes": 3_600_000_000,
                     "bits_per_second": 9.6e9, "retransmits": 12},
        "sum_received": {"start": 0, "end": 3.0, "seconds": 3.0004, "bytes": 3_562_500_000,
                         "bits_per_second": 9.5e9},
    },
})

BULK_SAMPLE = """bulk receive listening on 10.78.1.2:5001
{"mode": "receive", "bytes": 500000000, "sha256": "e55e", "seconds": 1.068, "gbit_per_s": 3.746}
"""


def test_to_ms() -> None:
    assert workloads.to_ms("812.00us") == pytest.approx(0.812)
    assert workloads.to_ms("6.93ms") == pytest.approx(6.93)
    assert workloads.to_ms("1.20s") == pytest.approx(1200)
    assert workloads.to_ms("2.00m") == pytest.approx(120_000)
    assert workloads.to_ms("fast") is None


def test_parse_wrk_prefers_script_percentiles() -> None:
    r = workloads.parse_wrk(WRK_SAMPLE)
    assert r["rps"] == pytest.approx(8303.27)
    assert r["requests"] == 33317
    assert r["duration_s"] == pytest.approx(4.01)
    assert r["latency_ms"]["p50"] == pytest.approx(6.93)
    assert r["latency_ms"]["p99.9"] == pytest.approx(31.0)
    assert r["script"]["errors"]["read"] == 0
    assert workloads.wrk_errors(r) == 0


def test_parse_wrk_without_script_and_with_errors() -> None:
    plain = WRK_SAMPLE.split("WRKJSON")[0]
    r = workloads.parse_wrk(plain)
    assert r["latency_ms"] == {"p50": 6.93, "p75": 7.36, "p90": 9.51, "p99": 20.69}
    bad = workloads.parse_wrk(WRK_ERRORS)
    assert bad["socket_errors"] == {"connect": 0, "read": 3, "write": 0, "timeout": 2}
    assert bad["non_2xx"] == 7
    assert workloads.wrk_errors(bad) == 12


def test_parse_ab() -> None:
    r = workloads.parse_ab(AB_SAMPLE)
    assert r == {"complete": 1429, "failed": 0, "rps": 472.92, "seconds": 3.022, "mean_ms": 105.725}
    assert workloads.parse_ab("apr_socket_connect(): Connection refused (111)") == {}


def test_parse_iperf3() -> None:
    r = workloads.parse_iperf3(IPERF3_SAMPLE)
    assert r["gbit_per_s"] == pytest.approx(9.5)
    assert r["sent_gbit_per_s"] == pytest.approx(9.6)
    assert r["retransmits"] == 12
    with pytest.raises(workloads.WorkloadError, match="unable to connect"):
        workloads.parse_iperf3(json.dumps({"start": {}, "error": "unable to connect to server"}))


def test_parse_bulk() -> None:
    assert workloads.parse_bulk(BULK_SAMPLE)["gbit_per_s"] == 3.746
    with pytest.raises(workloads.WorkloadError):
        workloads.parse_bulk("bulk receive listening on 10.78.1.2:5001\n")


def test_median_and_ratio() -> None:
    assert workloads.median([3.0, None, 1.0, 2.0]) == 2.0
    assert workloads.median([4.0, 1.0]) == 2.5
    assert workloads.median([None]) is None
    assert workloads.ratio(3.0, 2.0) == 1.5
    assert workloads.ratio(None, 2.0) is None
    assert workloads.ratio(1.0, 0) is None
    assert report.medians([{"rps": 1, "x": "a", "ok": True}, {"rps": 3}, {"rps": 2, "p99_ms": 5.0}]) == {
        "p99_ms": 5.0, "rps": 2}


def test_bulk_bytes_for() -> None:
    assert workloads.bulk_bytes_for(8.0, 3) == 3_000_000_000
    assert workloads.bulk_bytes_for(0.0001, 3) == 10_000_000  # floor
    assert workloads.bulk_bytes_for(100.0, 3) == 8_000_000_000  # ceiling
    assert workloads.bulk_bytes_for(0.03, 3, low=1_000_000) == 12_000_000


def test_client_argv() -> None:
    argv = workloads.wrk_argv("http://10.78.1.2:8080/", 5, rate=25_000.4)
    assert argv[:4] == ["wrk", "-t1", "-c50", "-d5s"]
    assert str(workloads.WRK_PACED_LUA) in argv and argv[-2:] == ["--", "25000"]
    assert str(workloads.WRK_REPORT_LUA) in workloads.wrk_argv("http://x/", 4)
    ab = workloads.ab_argv("http://x/", 3)
    assert ab.index("-t") < ab.index("-n")  # -n after -t lifts ab's 50000-request cap
    assert workloads.pinned("1", ["wrk"]) == ["taskset", "-c", "1", "wrk"]


def _results() -> report.Results:
    r = report.Results({"date": "2025-01-01 00:00 UTC", "cpus": 2, "cpu_model": "CPU"},
                       {"mode": "full", "command": "make bench", "runs": 3, "labels": {}})
    for name, values in {"aiostack-tap": [30_000, 31_000, 29_000], "uvloop-veth": [20_000, 19_000, 21_000],
                         "uvloop-loopback": [40_000, 42_000, 41_000]}.items():
        for v in values:
            r.add_run("rps", name, {"rps": v})
    r.add_run("bulk", "aiostack-tap/send", {"gbit_per_s": 9.0})
    r.add_run("bulk", report.IPERF_SERIES, {"gbit_per_s": 10.0})
    r.add_run("latency", "aiostack-tap", {"rps": 10_000, "p50_ms": 0.2, "p99_ms": 2.0, "p99.9_ms": 3.0})
    r.add_run("latency", "uvloop-veth", {"rps": 10_000, "p50_ms": 0.4, "p99_ms": 1.0, "p99.9_ms": 3.0})
    r.system("aiostack-tap", "ran")
    r.system("uvloop-veth", "ran")
    r.system("aiostack-packet", "skipped", "no driver")
    r.summarize()
    return r


def test_targets() -> None:
    rows = {t["id"]: t for t in _results().data["targets"]}
    assert rows["1a"]["ratio"] == 1.5 and rows["1a"]["pass"] is True  # 30k / 20k, ≥ 1.5
    assert rows["1b"]["ratio"] == pytest.approx(30 / 41, abs=1e-4) and rows["1b"]["pass"] is False
    assert rows["2a"]["ratio"] == 0.9 and rows["2a"]["pass"] is False
    assert "2b" not in rows  # aiostack-tap/receive was not measured: no row
    assert rows["5a"]["pass"] is True and rows["5b"]["pass"] is False  # lower is better
    assert rows["5c"]["ratio"] == 1.0 and rows["5c"]["pass"] is True  # equal passes "≤ 1×"
    assert "1a·pkt" not in rows
    assert list(rows)[:3] == ["1a", "1b", "2a"]


def test_target_with_missing_median() -> None:
    r = _results()
    r.add_error("bulk", "aiostack-tap/receive", "server died")
    r.summarize()
    rows = {t["id"]: t for t in r.data["targets"]}
    assert rows["2b"]["value"] is None and rows["2b"]["pass"] is None


@pytest.mark.parametrize(("result", "passed", "note"), [
    ({"connections": 1_000_000, "rss_bytes": 1.5e9}, True, "1,000,000 conns, 1.50 GB RSS"),
    ({"connections": 1_000_000, "rss_mb": 3000}, False, "1,000,000 conns, 3.15 GB RSS"),
    ({"connections": 999, "rss_bytes": 1e9, "within_target": False}, False, "999 conns, 1.00 GB RSS"),
    ({"established": 10, "pass": True}, True, "10 conns"),
    ({"whatever": 1}, None, '{"whatever": 1}'),
])
def test_idle_target(result: dict[str, object], passed: bool | None, note: str) -> None:
    row = report.idle_target({"result": result})
    assert row["pass"] is passed
    assert row["note"] == note
    assert report.idle_target({"skipped": "not there"})["note"] == "not there"


def test_markdown_and_readme(tmp_path: Path) -> None:
    data = _results().data
    md = report.markdown(data, images="results")
    assert "| aiostack-tap | 30,000 |" in md
    assert "skipped: no driver" in md
    assert "conns/s" not in md  # nothing measured: no column
    assert "| 1a | req/s keep-alive: aiostack-tap / uvloop-veth | 30,000 | 20,000 | 1.5× | ≥ 1.5× | ✅ pass |" in md
    assert "![req_per_s](results/req_per_s.png)" in md
    readme = tmp_path / "README.md"
    readme.write_text("intro\n<!-- bench-results:begin -->\nold\n<!-- bench-results:end -->\nrest\n")
    assert report.update_readme(readme, md)
    text = readme.read_text()
    assert "old" not in text and text.startswith("intro\n") and text.endswith("<!-- bench-results:end -->\nrest\n")
    assert "| 1a |" in text
    (tmp_path / "plain.md").write_text("no markers\n")
    assert not report.update_readme(tmp_path / "plain.md", md)


def test_plans() -> None:
    quick = run.make_plan(run.parse_args(["--quick"]))
    assert quick.systems == ["uvloop-veth", "aiostack-tap", "uvloop-loopback"]
    assert not quick.latency_systems and not quick.ab_seconds and not quick.idle_conns
    assert quick.iperf3 and quick.budget_s == 120
    full = run.make_plan(run.parse_args([]))
    assert full.systems[0] == "uvloop-veth"  # its rate sets the latency runs' rate
    assert set(full.systems) == set(run.ORDER) and full.idle_conns
    assert full.steps() > quick.steps() > 0
    subset = run.make_plan(run.parse_args(["--systems", "aiostack-tap,uvloop-veth"]))
    assert subset.systems == ["uvloop-veth", "aiostack-tap"]
    with pytest.raises(SystemExit):
        run.make_plan(run.parse_args(["--systems", "nonsense"]))


def test_cores_rows_from_the_cores_benchmark() -> None:
    from benchmarks import report

    data = {"cores": {"result": {"rows": [
        {"cores": 1, "req_per_s": 17355.4, "cpu_us_per_request_per_reactor": [55.7]},
        {"cores": 2, "req_per_s": 24983.1, "cpu_us_per_request_per_reactor": [58.8, 52.04]},
        {"driver": "packet", "cores": 2, "req_per_s": 30000, "cpu_us_per_request_per_reactor": [50, 51]},
    ]}}}
    assert report.cores_rows(data) == [["TAP", "1", "17,355", "55.7"], ["TAP", "2", "24,983", "58.8 / 52.0"],
                                       ["AF_PACKET", "2", "30,000", "50.0 / 51.0"]]
    assert report.cores_rows({}) == []


def test_instructions_line_shows_both_builds_and_their_ratio() -> None:
    data = {"instructions": {"result": {"workload": "echo", "pure": 882703, "compiled": 578839,
                                        "compiled_over_pure": 0.656}}}
    line = report.instructions_line(data)
    assert line is not None and "pure 882,703" in line and "compiled 578,839 (0.656 of pure" in line
    assert report.instructions_line({"instructions": {"error": "no valgrind"}}) is None
