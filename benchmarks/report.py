"""Results of a run: raw runs, medians, the issue's targets as ratios with pass/fail, and the ways
they are shown — a rich table on the terminal, a markdown table, JSON, and PNG plots.

The data model is plain JSON: ``workloads[workload][series]`` holds ``runs`` (one flat dict of
numbers per measured run), ``warmup`` (calibration runs, not counted), ``median`` (the median of
each numeric field over the runs), ``errors`` and ``info``. Workloads: ``rps`` (wrk, keep-alive),
``latency`` (wrk at a fixed rate), ``cps`` (ab, a connection per request) and ``bulk`` (one
connection; series ``SYSTEM/send`` — the system sends to a kernel client — ``SYSTEM/receive``, and
``iperf3-veth``).
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .workloads import median, ratio

WORKLOADS = ("rps", "latency", "cps", "bulk")
IPERF_SERIES = "iperf3-veth"
LATENCY_FIELDS = ("p50_ms", "p99_ms", "p99.9_ms")
IDLE_TARGET_CONNECTIONS = 1_000_000
IDLE_TARGET_RSS = 1_500_000_000  # "1.5 GB", as benchmarks/idle_conns.py reads it


class Results:
    """Everything one run measured, as a JSON-ready dict (``self.data``)."""

    def __init__(self, meta: Mapping[str, Any], plan: Mapping[str, Any]) -> None:
        self.data: dict[str, Any] = {
            "meta": dict(meta),
            "plan": dict(plan),
            "systems": {},
            "workloads": {w: {} for w in WORKLOADS},
            "idle_conns": None,
            "cores": None,
            "targets": [],
            "interrupted": False,
        }

    def _series(self, workload: str, series: str) -> dict[str, Any]:
        return self.data["workloads"][workload].setdefault(
            series, {"runs": [], "warmup": [], "median": {}, "errors": [], "info": {}}
        )

    def system(self, name: str, status: str, reason: str | None = None, **info: Any) -> None:
        entry = self.data["systems"].setdefault(name, {})
        entry.update({"status": status, **({"reason": reason} if reason else {}), **info})

    def add_run(self, workload: str, series: str, run: Mapping[str, Any], *, warmup: bool = False) -> None:
        self._series(workload, series)["warmup" if warmup else "runs"].append(dict(run))

    def add_error(self, workload: str, series: str, message: str) -> None:
        self._series(workload, series)["errors"].append(message)

    def set_info(self, workload: str, series: str, **info: Any) -> None:
        self._series(workload, series)["info"].update(info)

    def summarize(self) -> None:
        """Medians of every numeric field over each series' runs; then the targets."""
        for by_series in self.data["workloads"].values():
            for entry in by_series.values():
                entry["median"] = medians(entry["runs"])
        self.data["targets"] = evaluate_targets(self.data)

    def value(self, workload: str, series: str, field: str) -> float | None:
        return self.data["workloads"].get(workload, {}).get(series, {}).get("median", {}).get(field)

    def write_json(self, path: Path) -> None:
        path.write_text(json.dumps(self.data, indent=1, default=str) + "\n")


def medians(runs: Iterable[Mapping[str, Any]]) -> dict[str, float]:
    runs = list(runs)
    fields = {k for run in runs for k, v in run.items() if isinstance(v, int | float) and not isinstance(v, bool)}
    out = {}
    for field in sorted(fields):
        m = median(run.get(field) for run in runs)
        if m is not None:
            out[field] = round(m, 4)
    return out


# -- targets ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    id: str
    text: str
    workload: str
    series: str
    reference: str
    field: str
    required: float
    lower_is_better: bool = False


def _targets() -> list[Target]:
    t = [
        Target("1a", "req/s keep-alive: aiostack-tap / uvloop-veth", "rps", "aiostack-tap", "uvloop-veth", "rps", 1.5),
        Target("1b", "req/s keep-alive: aiostack-tap / uvloop-loopback", "rps", "aiostack-tap", "uvloop-loopback",
               "rps", 1.0),
        Target("2a", "bulk stack→kernel: aiostack-tap / iperf3 veth", "bulk", "aiostack-tap/send",
               IPERF_SERIES, "gbit_per_s", 1.0),
        Target("2b", "bulk kernel→stack: aiostack-tap / iperf3 veth", "bulk",
               "aiostack-tap/receive", IPERF_SERIES, "gbit_per_s", 1.0),
        Target("2c", "bulk stack→kernel: aiostack-tap / bulk.py veth", "bulk", "aiostack-tap/send",
               "uvloop-veth/send", "gbit_per_s", 1.0),
        Target("2d", "bulk kernel→stack: aiostack-tap / bulk.py veth", "bulk",
               "aiostack-tap/receive", "uvloop-veth/send", "gbit_per_s", 1.0),
        Target("3", "conns/s (ab, no keep-alive): aiostack-tap / uvloop-veth", "cps", "aiostack-tap", "uvloop-veth",
               "rps", 1.0),
    ]
    for field, sub in zip(LATENCY_FIELDS, "abc", strict=True):
        pct = field.removesuffix("_ms")
        t.append(Target(f"5{sub}", f"latency {pct} at ½ uvloop-veth max: aiostack-tap / uvloop-veth", "latency",
                        "aiostack-tap", "uvloop-veth", field, 1.0, lower_is_better=True))
    t += [
        Target("6a", "req/s keep-alive: aiostack-tap / pmd-pytcp", "rps", "aiostack-tap", "pmd-pytcp", "rps", 100),
        Target("6b", "bulk stack→kernel: aiostack-tap / pmd-pytcp", "bulk", "aiostack-tap/send", "pmd-pytcp/send",
               "gbit_per_s", 100),
        Target("6c", "bulk kernel→stack: aiostack-tap / pmd-pytcp", "bulk", "aiostack-tap/receive",
               "pmd-pytcp/receive", "gbit_per_s", 100),
    ]
    # the same comparisons for aiostack on AF_PACKET and AF_XDP, where they ran
    bases = [x for x in t if x.id in ("1a", "1b", "2a", "2b", "3")]
    for suffix, series in (("·pkt", "aiostack-packet"), ("·xdp", "aiostack-xdp")):
        for base in bases:
            t.append(Target(base.id + suffix, base.text.replace("aiostack-tap", series), base.workload,
                            base.series.replace("aiostack-tap", series), base.reference, base.field,
                            base.required, base.lower_is_better))
    return t


TARGETS = _targets()


def evaluate_targets(data: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Each target whose two series were part of the run: both medians, their ratio, pass/fail
    (None when a median is missing); and target 4 from ``benchmarks/idle_conns.py``'s result."""
    workloads = data.get("workloads", {})
    rows: list[dict[str, Any]] = []
    for t in TARGETS:
        by_series = workloads.get(t.workload, {})
        if t.series not in by_series or t.reference not in by_series:
            continue
        value = by_series[t.series].get("median", {}).get(t.field)
        ref = by_series[t.reference].get("median", {}).get(t.field)
        r = ratio(value, ref)
        passed = None if r is None else (r <= t.required if t.lower_is_better else r >= t.required)
        rows.append({
            "id": t.id, "target": t.text, "workload": t.workload, "series": t.series, "reference": t.reference,
            "field": t.field, "value": value, "reference_value": ref, "ratio": None if r is None else round(r, 4),
            "required": f"{'≤' if t.lower_is_better else '≥'} {t.required:g}×", "pass": passed,
        })
    idle = data.get("idle_conns")
    if idle is not None:
        rows.append(idle_target(idle))
    rows.sort(key=lambda row: (_natural(row["id"]), "·pkt" in row["id"]))
    return rows


def _natural(target_id: str) -> tuple[int, str]:
    m = re.match(r"(\d+)(\w?)", target_id)
    return (int(m.group(1)), m.group(2)) if m else (99, target_id)


def idle_target(idle: Mapping[str, Any]) -> dict[str, Any]:
    """Target 4 from whatever ``idle_conns.py`` reported: an explicit pass flag if it gives one,
    else a connection count and an RSS found under the usual names."""
    row: dict[str, Any] = {"id": "4", "target": "1,000,000 idle established connections within 1.5 GB RSS",
                           "workload": "idle_conns", "required": "≥ 1e6 conns, ≤ 1.5 GB", "ratio": None,
                           "value": None, "reference_value": None, "pass": None}
    result = idle.get("result")
    if not isinstance(result, Mapping):
        row["note"] = idle.get("skipped") or idle.get("error") or "no result"
        return row
    conns = _first(result, ("connections", "established", "conns", "count", "n"))
    rss = _first(result, ("rss_bytes", "rss"))
    for key, scale in (("rss_kib", 1024), ("rss_kb", 1024), ("rss_mib", 1024**2), ("rss_mb", 1024**2),
                       ("rss_gib", 1024**3), ("rss_gb", 1024**3)):
        if rss is None and (v := _first(result, (key,))) is not None:
            rss = v * scale
    row["value"], row["rss_bytes"] = conns, rss
    explicit = _first(result, ("within_target", "pass", "passed", "ok"), kind=bool)
    if explicit is not None:
        row["pass"] = bool(explicit)
    elif conns is not None and rss is not None:
        row["pass"] = conns >= IDLE_TARGET_CONNECTIONS and rss <= IDLE_TARGET_RSS
    parts = []
    if conns is not None:
        parts.append(f"{conns:,.0f} conns")
    if rss is not None:
        parts.append(f"{rss / 1e9:.2f} GB RSS")
    row["note"] = ", ".join(parts) or json.dumps(result)[:120]
    return row


def _first(obj: Mapping[str, Any], keys: Iterable[str], kind: type = float) -> Any:
    for key in keys:
        v = obj.get(key)
        if kind is bool and isinstance(v, bool):
            return v
        if kind is not bool and isinstance(v, int | float) and not isinstance(v, bool):
            return v
    return None


# -- tables ----------------------------------------------------------------------------------------


def fmt_num(value: float | None, digits: int = 0) -> str:
    if value is None:
        return "—"
    return f"{value:,.{digits}f}"


def fmt_gbit(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:.3f}" if value < 0.1 else f"{value:.2f}"


def fmt_ratio(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:.3g}×" if value < 10 else f"{value:,.0f}×"


def mark(passed: bool | None) -> str:
    return {True: "✅ pass", False: "❌ fail", None: "– n/a"}[passed]


def system_rows(data: Mapping[str, Any]) -> list[list[str]]:
    """One row per system (and the iperf3 reference): the medians side by side."""
    w = data["workloads"]
    labels = data.get("plan", {}).get("labels", {})
    rows = []
    names = [n for n in data.get("systems", {}) if n not in APP_SYSTEMS]
    if IPERF_SERIES in w["bulk"]:
        names.append(IPERF_SERIES)
    for name in names:
        status = data.get("systems", {}).get(name, {})
        label = labels.get(name, name)
        if status.get("status") in ("skipped", "failed"):
            rows.append([label, f"{status['status']}: {status.get('reason', '')}", "", "", "", ""])
            continue
        med = lambda wl, series, field: w.get(wl, {}).get(series, {}).get("median", {}).get(field)  # noqa: E731
        lat = w["latency"].get(name)
        lat_text = "—"
        if lat and lat.get("median"):
            m = lat["median"]
            lat_text = " / ".join(fmt_num(m.get(f), 2) for f in LATENCY_FIELDS)
            lat_text += f" @ {fmt_num(m.get('rps'))}"
        send = med("bulk", f"{name}/send", "gbit_per_s")
        receive = med("bulk", f"{name}/receive", "gbit_per_s")
        if name == IPERF_SERIES:
            send = med("bulk", IPERF_SERIES, "gbit_per_s")
        rows.append([
            label,
            fmt_num(med("rps", name, "rps")),
            fmt_num(med("cps", name, "rps")),
            lat_text,
            fmt_gbit(send),
            fmt_gbit(receive),
        ])
    return rows


SYSTEM_HEADERS = ["system", "req/s (keep-alive)", "conns/s (ab)", "latency p50 / p99 / p99.9 ms @ req/s",
                  "bulk system→kernel Gbit/s", "bulk kernel→system Gbit/s"]
TARGET_HEADERS = ["#", "target", "measured", "reference", "ratio", "required", "result"]


def _value_text(field: str, value: Any) -> str:
    if value is None:
        return "—"
    if field == "gbit_per_s":
        return f"{fmt_gbit(value)} Gbit/s"
    if field.endswith("_ms"):
        return f"{value:.2f} ms"
    return fmt_num(value)


def system_table(data: Mapping[str, Any]) -> tuple[list[str], list[list[str]]]:
    """Headers and rows of the medians table, without the columns nothing was measured for."""
    rows = system_rows(data)
    keep = [0] + [i for i in range(1, len(SYSTEM_HEADERS))
                  if any(row[i] not in ("—", "") for row in rows if not row[1].startswith(("skipped", "failed")))]
    return [SYSTEM_HEADERS[i] for i in keep], [[row[i] for i in keep] for row in rows]


def target_rows(data: Mapping[str, Any]) -> list[list[str]]:
    rows = []
    for t in data.get("targets", []):
        if t["id"] == "4":
            rows.append([t["id"], t["target"], t.get("note", "—"), "", "", t["required"], mark(t["pass"])])
            continue
        rows.append([t["id"], t["target"], _value_text(t["field"], t["value"]),
                     _value_text(t["field"], t["reference_value"]), fmt_ratio(t["ratio"]), t["required"],
                     mark(t["pass"])])
    return rows


def header_lines(data: Mapping[str, Any]) -> list[str]:
    meta, plan = data["meta"], data["plan"]
    virt = meta.get("virtualization")
    machine = (f"{meta.get('cpus')} × {meta.get('cpu_model')}"
               + (f" ({virt})" if virt else "")
               + f", {meta.get('mem_gib')} GiB, Linux {meta.get('kernel')}, Python {meta.get('python')}")
    lines = [
        f"Run {meta.get('date')} · `{plan.get('command')}` ({plan.get('mode')}, {meta.get('elapsed_s', '?')} s) "
        f"· commit {meta.get('commit')}",
        f"Machine: {machine}" + (f"; aiostack {meta['build']} build" if meta.get("build") else ""),
        f"Server pinned to CPU {plan.get('server_cpu')}, clients to CPU {plan.get('client_cpu')}; medians of "
        f"{plan.get('runs')} runs; wrk -t1 -c50 {plan.get('rps_seconds') or '?'} s per run"
        + (f"; latency at a fixed {fmt_num(plan.get('latency_rate'))} req/s (½ of uvloop-veth's median)."
           if plan.get("latency_systems") else "."),
    ]
    if "uvloop-veth/send" in data.get("workloads", {}).get("bulk", {}):
        lines.append("Bulk for uvloop · veth is kernel→kernel with `examples/bulk.py` on both ends (its Python-level "
                     "copies included, like every other bulk row; the content's SHA-256 is checked on a calibration "
                     "transfer, not on the measured ones); iperf3 · veth is the same path with iperf3.")
    if data.get("interrupted"):
        lines.append("**Interrupted** — partial results.")
    return lines


DEVICE_LABELS = {"tap": "TAP", "packet": "AF_PACKET", "xdp": "AF_XDP"}
CORES_HEADERS = ["device", "reactors", "req/s (wrk -c100, keep-alive)", "CPU µs per request, each reactor"]


APP_SYSTEMS = ("aiohttp-veth", "aiohttp-tap")
"""An unmodified application (examples/aiohttp_app.py) on uvloop through veth and under
``aiostack run`` on a TAP: their own table, keep-alive req/s and wrk's latency percentiles."""
APP_HEADERS = ["unmodified aiohttp app", "req/s (keep-alive)", "latency p50 / p99 ms (wrk)", "vs uvloop · veth"]


def app_rows(data: Mapping[str, Any]) -> list[list[str]]:
    w = data["workloads"]
    labels = data.get("plan", {}).get("labels", {})
    ran = data.get("systems", {})
    reference = w["rps"].get(APP_SYSTEMS[0], {}).get("median", {}).get("rps")
    rows = []
    for name in APP_SYSTEMS:
        if name not in ran:
            continue
        label = labels.get(name, name)
        if ran[name].get("status") in ("skipped", "failed"):
            rows.append([label, f"{ran[name]['status']}: {ran[name].get('reason', '')}", "", ""])
            continue
        m = w["rps"].get(name, {}).get("median", {})
        rps = m.get("rps")
        rows.append([label, fmt_num(rps), f"{fmt_num(m.get('p50_ms'), 2)} / {fmt_num(m.get('p99_ms'), 2)}",
                     fmt_ratio(rps / reference) if rps and reference else "—"])
    return rows


def cores_rows(data: Mapping[str, Any]) -> list[list[str]]:
    """1 vs N reactors (benchmarks/cores.py): request rate and each reactor's CPU per request,
    which should stay flat as reactors are added (the load generator shares these 2 cores)."""
    result = (data.get("cores") or {}).get("result") or {}
    return [
        [DEVICE_LABELS.get(r.get("driver", "tap"), r.get("driver", "")), str(r["cores"]),
         fmt_num(r["req_per_s"]), " / ".join(f"{v:.1f}" for v in r["cpu_us_per_request_per_reactor"])]
        for r in result.get("rows", [])
    ]


def instructions_line(data: Mapping[str, Any]) -> str | None:
    """benchmarks/instructions.py's figure: user-space instructions per round trip, both builds."""
    r = (data.get("instructions") or {}).get("result") or {}
    if not r.get("pure"):
        return None
    line = (f"User-space instructions per request/response round trip (callgrind, {r.get('workload')}): "
            f"pure {fmt_num(r['pure'])}")
    if r.get("compiled"):
        line += f", compiled {fmt_num(r['compiled'])} ({r.get('compiled_over_pure')} of pure; target ≤ 0.2)"
    return line + "."


def markdown(data: Mapping[str, Any], *, images: str | None = "results") -> str:
    def table(headers: list[str], rows: list[list[str]]) -> str:
        out = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
        out += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
        return "\n".join(out)

    parts = ["\n\n".join(header_lines(data))]
    headers, rows = system_table(data)
    if rows:
        parts.append(table(headers, rows))
    if data.get("targets"):
        parts.append(table(TARGET_HEADERS, target_rows(data)))
    if app_rows(data):
        parts.append(table(APP_HEADERS, app_rows(data)))
    if cores_rows(data):
        parts.append("1 vs 2 reactors over a multi-queue TAP, AF_PACKET fanout and AF_XDP queues "
                     "(`benchmarks/cores.py`, "
                     "`--cores N`):\n\n"
                     + table(CORES_HEADERS, cores_rows(data)))
    if line := instructions_line(data):
        parts.append(line)
    errors = all_errors(data)
    if errors:
        parts.append("Errors and notes:\n\n" + "\n".join(f"- {e}" for e in errors))
    if images is not None:
        parts.append(" ".join(f"![{stem}]({images}/{stem}.png)" for stem in PLOTS))
    return "\n\n".join(parts) + "\n"


def all_errors(data: Mapping[str, Any]) -> list[str]:
    out = []
    for workload, by_series in data["workloads"].items():
        for series, entry in by_series.items():
            out += [f"{workload} {series}: {e}" for e in entry.get("errors", [])]
    return out


def print_tables(data: Mapping[str, Any], console: Any | None = None) -> None:
    """The two tables on the terminal (rich if installed, else plain text)."""
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:
        print(markdown(data, images=None))
        return
    console = console or Console(width=None if sys.stdout.isatty() else 160)
    for line in header_lines(data):
        console.print(line.replace("`", ""), highlight=False)
    headers, rows = system_table(data)
    if rows:
        t = Table(title="medians", title_justify="left")
        for i, h in enumerate(headers):
            t.add_column(h, justify="left" if i == 0 else "right")
        for row in rows:
            t.add_row(*row)
        console.print(t)
    if data.get("targets"):
        t = Table(title="targets (the issue's ratios)", title_justify="left")
        for i, h in enumerate(TARGET_HEADERS):
            t.add_column(h, justify="right" if i in (2, 3, 4) else "left")
        for row in target_rows(data):
            style = "green" if "pass" in row[-1] else "red" if "fail" in row[-1] else "dim"
            t.add_row(*row[:-1], f"[{style}]{row[-1]}[/{style}]")
        console.print(t)
    if app_rows(data):
        t = Table(title="an unmodified aiohttp application", title_justify="left")
        for i, h in enumerate(APP_HEADERS):
            t.add_column(h, justify="left" if i == 0 else "right")
        for row in app_rows(data):
            t.add_row(*row)
        console.print(t)
    if cores_rows(data):
        t = Table(title="1 vs 2 reactors (benchmarks/cores.py)", title_justify="left")
        for i, h in enumerate(CORES_HEADERS):
            t.add_column(h, justify="left" if i < 2 else "right")
        for row in cores_rows(data):
            t.add_row(*row)
        console.print(t)
    if line := instructions_line(data):
        console.print(line, highlight=False)
    for e in all_errors(data):
        console.print(f"[red]error[/red] {e}", highlight=False)


def update_readme(readme: Path, text: str, begin: str = "<!-- bench-results:begin -->",
                  end: str = "<!-- bench-results:end -->") -> bool:
    """Replace what stands between the two markers in ``readme``; False when they are missing."""
    if not readme.exists():
        return False
    content = readme.read_text()
    i, j = content.find(begin), content.find(end)
    if i < 0 or j < i:
        return False
    readme.write_text(content[: i + len(begin)] + "\n" + text.rstrip() + "\n" + content[j:])
    return True


# -- plots -----------------------------------------------------------------------------------------

PLOTS = ("req_per_s", "throughput", "latency")


def plot(data: Mapping[str, Any], outdir: Path) -> list[Path]:
    """req_per_s.png, throughput.png, latency.png (matplotlib; [] when it is not installed)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return []
    labels = data.get("plan", {}).get("labels", {})
    w = data["workloads"]
    made = []

    def bars(ax: Any, names: list[str], entries: list[dict[str, Any]], field: str, scale: float,
             color: str, unit: str, digits: int) -> None:
        ys = [(e.get("median", {}).get(field) or 0) * scale for e in entries]
        pos = range(len(names))
        ax.bar(pos, ys, color=color, alpha=0.8)
        highs = []
        for x, (y, e) in enumerate(zip(ys, entries, strict=True)):
            pts = [r[field] * scale for r in e.get("runs", []) if r.get(field) is not None]
            ax.plot([x] * len(pts), pts, "k.", markersize=4)
            highs.append(max([y, *pts]))
        top = max(highs or [1]) or 1
        for x, (y, high) in enumerate(zip(ys, highs, strict=True)):
            ax.text(x, high + top * 0.015, f"{y:,.{digits}f}{unit}", ha="center", va="bottom", fontsize=8)
        ax.set_xticks(list(pos), [labels.get(n, n).replace(" · ", "\n") for n in names], fontsize=8)
        ax.set_ylim(0, top * 1.18)
        ax.grid(axis="y", alpha=0.3)

    def target_line(ax: Any, value: float | None, text: str) -> None:
        if value:
            ax.axhline(value, color="tab:red", linestyle="--", linewidth=1)
            ax.text(ax.get_xlim()[1], value, f" {text}", color="tab:red", fontsize=7, va="bottom", ha="right")
            ax.set_ylim(0, max(ax.get_ylim()[1], value * 1.1))

    def med(workload: str, series: str, field: str) -> float | None:
        return w.get(workload, {}).get(series, {}).get("median", {}).get(field)

    title = f"aiostack benchmarks — {data['meta'].get('date', '')[:16]}"

    # requests per second (keep-alive) and connections per second
    panels = [(k, t) for k, t in (("rps", "HTTP keep-alive req/s (wrk -c50)"), ("cps", "connections/s (ab -c50)"))
              if w.get(k)]
    if panels:
        fig, axes = plt.subplots(1, len(panels), figsize=(6 * len(panels), 4.2), squeeze=False)
        for ax, (key, t) in zip(axes[0], panels, strict=True):
            names = list(w[key])
            bars(ax, names, [w[key][n] for n in names], "rps", 1.0, "tab:blue" if key == "rps" else "tab:green",
                 "", 0)
            ax.set_title(t, fontsize=10)
            uv = med(key, "uvloop-veth", "rps")
            if key == "rps" and uv:
                target_line(ax, 1.5 * uv, "aiostack's target: 1.5× uvloop-veth")
            elif uv:
                target_line(ax, uv, "aiostack's target: 1× uvloop-veth")
        fig.suptitle(title + " · medians (bars) and runs (dots)", fontsize=10)
        fig.tight_layout()
        made.append(_save(fig, outdir / "req_per_s.png", plt))

    # bulk throughput
    if w.get("bulk"):
        names = list(w["bulk"])
        fig, ax = plt.subplots(figsize=(max(6, 1.1 * len(names) + 2), 4.2))
        bulk_labels = {n: bulk_label(n, labels) for n in names}
        entries = [w["bulk"][n] for n in names]
        ys = [e.get("median", {}).get("gbit_per_s") or 0 for e in entries]
        ax.bar(range(len(names)), ys, color="tab:orange", alpha=0.8)
        highs = []
        for x, (y, e) in enumerate(zip(ys, entries, strict=True)):
            pts = [r["gbit_per_s"] for r in e.get("runs", []) if r.get("gbit_per_s") is not None]
            ax.plot([x] * len(pts), pts, "k.", markersize=4)
            highs.append(max([y, *pts]))
        top = max(highs or [1]) or 1
        for x, (y, high) in enumerate(zip(ys, highs, strict=True)):
            ax.text(x, high + top * 0.015, fmt_gbit(y), ha="center", va="bottom", fontsize=8)
        ax.set_xticks(range(len(names)), [bulk_labels[n] for n in names], fontsize=7)
        ax.set_ylabel("Gbit/s")
        ax.set_ylim(0, top * 1.18)
        ax.grid(axis="y", alpha=0.3)
        target_line(ax, med("bulk", IPERF_SERIES, "gbit_per_s"), "aiostack's target: ≥ iperf3 kernel→kernel")
        ax.set_title(title + " · one TCP connection, bulk", fontsize=10)
        fig.tight_layout()
        made.append(_save(fig, outdir / "throughput.png", plt))

    # latency percentiles at the fixed rate
    lat = {n: e for n, e in w.get("latency", {}).items() if e.get("median")}
    if lat:
        names = list(lat)
        fig, ax = plt.subplots(figsize=(max(6, 1.6 * len(names) + 2), 4.2))
        width = 0.8 / len(LATENCY_FIELDS)
        for i, field in enumerate(LATENCY_FIELDS):
            ys = [lat[n]["median"].get(field) or 0 for n in names]
            xs = [x + (i - 1) * width for x in range(len(names))]
            ax.bar(xs, ys, width=width, label=field.removesuffix("_ms"))
            for x, y in zip(xs, ys, strict=True):
                ax.text(x, y, f"{y:.2f}", ha="center", va="bottom", fontsize=7)
        ax.set_yscale("log")
        ticks = [f"{labels.get(n, n)}\n{fmt_num(lat[n]['median'].get('rps'))} req/s" for n in names]
        ax.set_xticks(range(len(names)), ticks, fontsize=8)
        ax.set_ylabel("ms (log scale)")
        ax.legend(fontsize=8)
        ax.grid(axis="y", alpha=0.3)
        rate = data.get("plan", {}).get("latency_rate")
        ax.set_title(f"{title} · latency at a fixed {fmt_num(rate)} req/s (achieved rate under each system)",
                     fontsize=9)
        fig.tight_layout()
        made.append(_save(fig, outdir / "latency.png", plt))
    return made


def bulk_label(series: str, labels: Mapping[str, str]) -> str:
    """``aiostack-tap/send`` → "aiostack · TAP\nstack→kernel", for the throughput plot."""
    if series == IPERF_SERIES:
        return "iperf3 · veth\nkernel→kernel"
    system, _, direction = series.partition("/")
    label = labels.get(system, system)
    if system.startswith(("uvloop", "asyncio")):
        return f"{label}\nkernel→kernel (bulk.py)"
    who = "pytcp" if "pytcp" in system else "stack"
    return f"{label}\n{who}→kernel" if direction == "send" else f"{label}\nkernel→{who}"


def _save(fig: Any, path: Path, plt: Any) -> Path:
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
