"""The control socket (aiostack/control.py) and ``aiostack stat`` reading it."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

import pytest

import memnet
from aiostack.cli import totals
from aiostack.control import ControlServer, ParentControl, query
from aiostack.protocols import create_connection, create_server


class _Hold(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport


@pytest.mark.asyncio
async def test_stat_and_connection_table_through_the_socket_and_the_command(tmp_path: Path) -> None:
    client, server = memnet.pair()
    async with client, server:
        await create_server(_Hold, memnet.SERVER, 80, stack=server)
        transports = [(await create_connection(_Hold, memnet.SERVER, 80, stack=client))[0] for _ in range(3)]
        await memnet.until(lambda: len(server.tcp.connections) == 3, "three connections at the server")
        control = ControlServer(server, tmp_path / "ctl.sock")
        served = {"requests": 0}
        server.export("demo", lambda: served)  # the application's own counters, read when asked
        await control.start()
        try:
            stat = await query(control.path, "stat")
            assert stat["interfaces"][0]["addr"] == f"{memnet.SERVER}/24"
            assert stat["counters"]["tcp"]["stats"]["passive_opens"] == 3
            served["requests"] = 7
            assert (await query(control.path, "stat"))["counters"]["app"] == {"demo": {"requests": 7}}
            conns = await query(control.path, "conns 2")
            assert conns["total"] == 3 and conns["states"] == {"ESTABLISHED": 3}
            assert len(conns["connections"]) == 2 and conns["listeners"] == [f"{memnet.SERVER}:80"]
            assert conns["connections"][0]["local"] == f"{memnet.SERVER}:80"
            assert "error" in await query(control.path, "frobnicate")
            assert "error" in await query(control.path, "conns many")
            # the command line tool, as a user runs it
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "aiostack", "stat", "--json", "--socket", str(control.path),
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            )
            out, err = await asyncio.wait_for(proc.communicate(), 30)
            assert proc.returncode == 0, err.decode()
            doc = json.loads(out)
            assert doc["tcp_connections"]["total"] == 3
            assert doc["counters"]["tcp"]["stats"]["passive_opens"] == 3
            # and its table form
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "aiostack", "stat", "--socket", str(control.path),
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            )
            out, err = await asyncio.wait_for(proc.communicate(), 30)
            assert proc.returncode == 0, err.decode()
            assert b"passive_opens" in out and b"ESTABLISHED" in out and b"requests" in out
            # a parent aggregating two reactors (here: the same stack twice)
            reactors = [{"core": k, "pid": os.getpid(), "restarts": k, "socket": str(control.path)} for k in (0, 1)]
            parent = ParentControl(tmp_path / "parent.sock", lambda: [dict(r) for r in reactors], labels={"cores": 2})
            loop = asyncio.get_running_loop()
            try:
                agg = await loop.run_in_executor(None, parent.answer, "stat")
                assert agg["role"] == "parent" and agg["cores"] == 2 and len(agg["reactors"]) == 2
                assert agg["counters"]["tcp"]["stats"]["passive_opens"] == 6
                assert agg["counters"]["app"] == {"demo": {"requests": 14}}
                table = await loop.run_in_executor(None, parent.answer, "conns 4")
                assert table["total"] == 6 and table["states"] == {"ESTABLISHED": 6}
                assert [c["core"] for c in table["connections"]] == [0, 0, 0, 1]
                assert "error" in parent.answer("reboot")
                proc = await asyncio.create_subprocess_exec(  # its table, as the command prints it
                    sys.executable, "-c", "import json, sys; from aiostack.cli import _print_tables; "
                    "_print_tables([json.loads(sys.stdin.read())])",
                    stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
                )
                doc = json.dumps({**agg, "socket": str(parent.path), "tcp_connections": table}).encode()
                out, err = await asyncio.wait_for(proc.communicate(doc), 30)
                assert proc.returncode == 0, err.decode()
                assert b"parent of 2 reactors" in out and b"restarts 1" in out and b"passive_opens" in out
                # the command's grouping takes the parent's sums, not its reactors' again
                groups = totals([{**agg, "tcp_connections": table},
                                 {"parent": os.getpid(), "counters": stat["counters"]}])
                assert groups[str(os.getpid())]["counters"]["tcp"]["stats"]["passive_opens"] == 6
                reactors[1]["socket"] = str(tmp_path / "gone.sock")  # between a death and its restart
                agg = await loop.run_in_executor(None, parent.answer, "stat")
                assert "error" in agg["reactors"][1] and agg["counters"]["tcp"]["stats"]["passive_opens"] == 3
            finally:
                parent.close()
            assert not parent.path.exists()
        finally:
            control.close()
            for t in transports:
                t.close()
        assert not control.path.exists()


def test_stat_without_instances_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from aiostack.cli import main

    monkeypatch.setenv("AIOSTACK_CONTROL_DIR", str(tmp_path / "none"))
    assert main(["stat"]) == 1


def test_stale_sockets_of_dead_processes_are_removed(tmp_path: Path) -> None:
    import subprocess

    from aiostack.control import remove_stale

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True).stdout.strip()
    (tmp_path / f"{dead}.sock").write_text("")
    alive = tmp_path / f"{os.getpid()}.sock"
    alive.write_text("")
    named = tmp_path / "mine.sock"
    named.write_text("")
    assert remove_stale(tmp_path) == [tmp_path / f"{dead}.sock"]
    assert alive.exists() and named.exists()
