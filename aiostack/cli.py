"""The ``aiostack`` command. ``aiostack stat`` shows every running instance's counters and
connections, read through their control sockets (:mod:`aiostack.control`); ``aiostack run
[stack options] -- PROGRAM ARGS…`` runs an unmodified asyncio program on aiostack
(:mod:`aiostack.launcher`)."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from .control import DEFAULT_CONNS, control_dir, query, sum_counters


def _flatten(prefix: str, value: Any, out: list[tuple[str, str]]) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            _flatten(f"{prefix}.{k}" if prefix else str(k), v, out)
    else:
        out.append((prefix, f"{value:,}" if isinstance(value, int) else str(value)))


async def _collect(paths: list[Path], conns: int) -> list[dict[str, Any]]:
    out = []
    for path in paths:
        try:
            entry = await query(path, "stat")
            entry["tcp_connections"] = await query(path, f"conns {conns}")
            entry["socket"] = str(path)
        except (ConnectionRefusedError, FileNotFoundError):
            entry = {"socket": str(path), "stale": True}  # its process is gone
        except (TimeoutError, OSError, json.JSONDecodeError) as exc:
            entry = {"socket": str(path), "error": f"{type(exc).__name__}: {exc}"}
        out.append(entry)
    return out


def totals(instances: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The counters of the reactors of one multi-core instance: as its parent aggregated them
    (``"from": "parent"``), else summed here from the reactors listed (same parent pid)."""
    groups: dict[str, dict[str, Any]] = {}
    for inst in instances:
        if inst.get("role") == "parent" and "counters" in inst:
            groups[str(inst["pid"])] = {"reactors": inst["cores"], "from": "parent", "counters": inst["counters"],
                                        "connections": inst.get("tcp_connections", {}).get("total", 0)}
    for inst in instances:
        if "parent" not in inst or "counters" not in inst or groups.get(str(inst["parent"]), {}).get("from"):
            continue
        g = groups.setdefault(str(inst["parent"]), {"reactors": 0, "connections": 0, "counters": {}})
        g["reactors"] += 1
        g["connections"] += inst.get("tcp_connections", {}).get("total", 0)
        sum_counters(g["counters"], inst["counters"])
    return groups


def _print_tables(instances: list[dict[str, Any]]) -> None:
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:
        Console = None
    for inst in instances:
        role = f" (parent of {inst['cores']} reactors)" if inst.get("role") == "parent" else ""
        build = f", {inst['build']} build" if "build" in inst else ""
        title = f"aiostack pid {inst.get('pid', '?')}{role}{build} — {inst['socket']}"
        if "error" in inst or "stale" in inst:
            print(f"{title}: {inst.get('error', 'stale socket (no process behind it)')}")
            continue
        rows: list[tuple[str, str]] = []
        reactors = {  # a parent's: who serves each core now
            f"core {r['core']}": f"pid {r['pid']}, restarts {r['restarts']}{' (not answering)' if 'error' in r else ''}"
            for r in inst.get("reactors", [])
        }
        _flatten("", {"interfaces": {i["name"]: i["addr"] for i in inst["interfaces"]},
                      "uptime_s": inst["uptime_s"], **({"reactors": reactors} if reactors else {}),
                      **inst["counters"]}, rows)
        conns = inst["tcp_connections"]
        if Console is None:
            print(title)
            for k, v in rows:
                print(f"  {k:<48} {v:>14}")
            print(f"  connections: {conns['total']} {conns['states']}")
            for c in conns["connections"]:
                print(f"    {c['local']:<22} {c['remote']:<22} {c['state']:<12} "
                      f"{c['send_queue']:>8} {c['recv_queue']:>8}")
            continue
        console = Console()
        t = Table(title=title, title_justify="left")
        t.add_column("counter")
        t.add_column("value", justify="right")
        for k, v in rows:
            t.add_row(k, v)
        console.print(t)
        ct = Table(title=f"connections: {conns['total']:,} {conns['states']}", title_justify="left")
        for col in ("local", "remote", "state", "send-q", "recv-q", "srtt ms"):
            ct.add_column(col, justify="right" if col.endswith(("q", "ms")) else "left")
        for c in conns["connections"]:
            ct.add_row(c["local"], c["remote"], c["state"], str(c["send_queue"]), str(c["recv_queue"]),
                       "" if c["srtt_ms"] is None else str(c["srtt_ms"]))
        console.print(ct)


def stat(args: argparse.Namespace) -> int:
    if args.socket:
        paths = [Path(p) for p in args.socket]
    else:
        d = control_dir()
        paths = sorted(d.glob("*.sock")) if d.is_dir() else []
    if not paths:
        print(f"no running aiostack instance (no control socket in {control_dir()})", file=sys.stderr)
        return 1
    instances = asyncio.run(_collect(paths, args.conns))
    if not args.socket:
        instances = [i for i in instances if "stale" not in i]
        if not instances:
            print(f"no running aiostack instance (only stale sockets in {control_dir()})", file=sys.stderr)
            return 1
    groups = totals(instances)
    if args.json:
        if args.socket and len(instances) == 1:
            print(json.dumps(instances[0], default=str))
        else:
            print(json.dumps({"instances": instances, "totals": groups}, default=str))
    else:
        _print_tables(instances)
        for parent, g in groups.items():
            if g["reactors"] > 1 and "from" not in g:  # a parent's own table is printed above
                _print_tables([{"socket": f"all {g['reactors']} reactors", "pid": parent, "interfaces": [],
                                "uptime_s": "", "counters": g["counters"],
                                "tcp_connections": {"total": g["connections"], "states": {}, "connections": []}}])
    return 0 if all("error" not in i for i in instances) else 1


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "run":  # its own parser: everything after -- belongs to the program
        from .launcher import main as run_main

        return run_main(argv[1:])
    parser = argparse.ArgumentParser(prog="aiostack", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("run", help="run an asyncio program on aiostack: aiostack run [stack options] -- PROGRAM ARGS",
                   add_help=False)
    p = sub.add_parser("stat", help="counters and connections of running instances")
    p.add_argument("--json", action="store_true", help="one JSON document instead of tables")
    p.add_argument("--socket", action="append", metavar="PATH",
                   help="this control socket (repeatable; default: every one in the control directory)")
    p.add_argument("--conns", type=int, default=DEFAULT_CONNS, metavar="N",
                   help=f"connection rows to show (default {DEFAULT_CONNS})")
    p.set_defaults(func=stat)
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
