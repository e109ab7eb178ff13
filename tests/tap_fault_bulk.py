"""Run by tests/test_tcp_tap.py (and tests/test_xdp_veth.py, ``--driver xdp``) inside a test-made
namespace: examples/bulk.py's transfer served by an aiostack stack whose TAP (checksum offload,
TSO, GRO) — or AF_XDP veth end — sits behind the fault wrapper, so loss, reordering, duplication
and corruption hit its frames both ways (64 KB offload frames on the TAP). Prints the
transfer's JSON line, then the stack's and the wrapper's counters as one JSON line."""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import sys
from pathlib import Path

from aiostack.app import run
from aiostack.drivers.base import Driver
from aiostack.drivers.fault import FaultProfile, FaultWrapper
from aiostack.drivers.tap import TapDriver
from aiostack.stack import Stack, pool_for_mtu
from aiostack.streams import start_server

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=("send", "receive"))
    ap.add_argument("--bytes", type=int, required=True)
    ap.add_argument("--loss", type=float, default=0.01)
    ap.add_argument("--corrupt", type=float, default=None, help="the corruption rate (default: a tenth of --loss)")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--driver", choices=("tap", "xdp"), default="tap")
    ap.add_argument("--iface", default=None, help="with --driver xdp: the veth end to drive")
    args = ap.parse_args()
    spec = importlib.util.spec_from_file_location("bulk", EXAMPLES / "bulk.py")
    assert spec is not None and spec.loader is not None
    bulk = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bulk)
    profile = FaultProfile(loss=args.loss, reorder=args.loss, duplicate=args.loss / 2,
                           corrupt=args.loss / 10 if args.corrupt is None else args.corrupt)

    async def amain() -> dict[str, object]:
        stack = Stack(pool=pool_for_mtu(1500))
        if args.driver == "xdp":
            from aiostack.drivers.xdp import XdpDriver

            device: Driver = XdpDriver(args.iface, pool=stack.pool)
        else:
            device = TapDriver("aiostack0", pool=stack.pool, host_addr="10.77.0.1/24")
        fault = FaultWrapper(device, rx=profile, tx=profile, seed=args.seed)
        stack.attach(fault, "10.77.0.2/24")
        await stack.start()
        done: asyncio.Future[dict[str, object]] = asyncio.get_running_loop().create_future()

        async def one(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                done.set_result(await bulk.transfer(args.mode, reader, writer, args.bytes, 1))
            except Exception as exc:
                if not done.done():
                    done.set_exception(exc)

        server = await start_server(one, "10.77.0.2", 5001, stack=stack)
        print("bulk listening", flush=True)
        async with server:
            result = await done
        await asyncio.sleep(0.5)  # let the close finish
        result["counters"] = {"fault": dict(fault.fault_counters), "tcp": stack.counters()["tcp"]}
        stack.close()
        return result

    result = run(amain)
    if result is None:
        return 130
    print(json.dumps(result, default=str), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
