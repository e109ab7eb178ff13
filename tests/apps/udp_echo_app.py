"""An ordinary asyncio UDP echo server (``loop.create_datagram_endpoint``), nothing in it knows
of aiostack: ``aiostack run ... -- tests/apps/udp_echo_app.py PORT``. Prints "listening" once
bound; stops on SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import signal
import sys


class Echo(asyncio.DatagramProtocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: asyncio.DatagramTransport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.transport.sendto(data, addr)


async def main(port: int) -> None:
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(Echo, local_addr=("0.0.0.0", port))
    stop = loop.create_future()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set_result, None)
    print(f"listening on {transport.get_extra_info('sockname')} ({type(loop).__module__})", flush=True)
    await stop
    transport.close()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
