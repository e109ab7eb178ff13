"""Run inside a test namespace: an aiostack stack on a TAP that *starts* the conversation, so the
stack must resolve the kernel by ARP itself; then sends to an address nobody answers for.
Prints one JSON line with what happened."""

from __future__ import annotations

import asyncio
import errno
import json
import sys
import time

from aiostack.app import run
from aiostack.drivers.tap import TapDriver
from aiostack.stack import Stack


async def main() -> dict[str, object]:
    iface, addr, host_addr, kernel_ip, kernel_port, silent_ip = sys.argv[1:7]
    stack = Stack()
    stack.attach(TapDriver(iface, pool=stack.pool, host_addr=host_addr), addr)
    out: dict[str, object] = {}
    async with stack:
        sock = stack.socket()
        sock.bind(("0.0.0.0", 0))
        replies = 0
        for i in range(20):
            # The kernel's echo socket binds once our TAP gives it its address: until then, resend.
            # Late echoes of earlier attempts are skipped.
            want = b"HELLO %d" % i
            got = False
            for _attempt in range(40):
                await sock.sendto(b"hello %d" % i, (kernel_ip, int(kernel_port)))
                try:
                    while not got:
                        data, peer = await asyncio.wait_for(sock.recvfrom(2048), 0.25)
                        got = data == want and peer == (kernel_ip, int(kernel_port))
                except TimeoutError:
                    continue
                break
            replies += got
        out["replies"] = replies
        out["arp_table"] = stack.arp_table()
        t0 = time.monotonic()
        try:
            await asyncio.wait_for(sock.sendto(b"anyone?", (silent_ip, 9)), 30)
            out["silent_error"] = None
        except OSError as exc:
            out["silent_error"] = errno.errorcode.get(exc.errno or 0)
            out["silent_message"] = str(exc)
        out["silent_seconds"] = round(time.monotonic() - t0, 2)
        out["counters"] = stack.counters()
    return out


if __name__ == "__main__":
    print(json.dumps(run(main), default=str), flush=True)
