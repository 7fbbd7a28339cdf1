"""``mmate health URL`` run as a subprocess against a service serving its health endpoint in this
process: the table, ``--json``, and exit codes scripts can trust (0 healthy, 3 degraded, 1
unhealthy or unreachable or not a report, 2 bad use)."""
from __future__ import annotations

import asyncio
import json
import os
import socket
import sys
from pathlib import Path

from mmate_fast.client import Client
from mmate_fast.observability import HealthStatus
from tests.behaviour.conftest import Names

ROOT = Path(__file__).resolve().parents[2]


async def mmate(*argv: str) -> tuple[int, str, str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH"))
                                                       if p), "COLUMNS": "120"}
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "mmate_fast.cli", *argv, env=env,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_health_cli_exit_codes_table_and_json(url: str, names: Names) -> None:
    async with Client(url, service_name=names.service("clihealth")) as c:
        c.add_handler("*", lambda m: None)
        await c.start_consuming()
        obs = await c.serve_observability(port=0)
        host_port = obs.url.removeprefix("http://")

        code, out, err = await mmate("health", host_port)  # no scheme, no path: http://.../health
        assert (code, err) == (0, ""), err
        assert f"{c.service_name}: healthy" in out
        for check in ("connection", "channels", "consumers", "queues", "consumer_lag", "dead_letters"):
            assert check in out

        code, out, _ = await mmate("health", f"{obs.url}/health", "--json")
        assert code == 0 and json.loads(out)["checks"]["connection"]["status"] == "healthy"

        obs.health.add("disk", lambda: HealthStatus.DEGRADED)
        code, out, _ = await mmate("health", obs.url)
        assert code == 3 and f"{c.service_name}: degraded" in out

        def broken() -> None:
            raise RuntimeError("database gone")

        obs.health.add("database", broken)
        code, out, _ = await mmate("health", obs.url, "--json")
        assert code == 1 and json.loads(out)["checks"]["database"]["error"] == "RuntimeError: database gone"
        code, out, _ = await mmate("health", obs.url)
        assert code == 1 and "database gone" in out and "unhealthy" in out

        code, out, err = await mmate("health", f"{obs.url}/health/live")  # answers, but not a report
        assert code == 1 and out == "" and "not JSON" in err and err.count("\n") == 1


async def test_health_cli_unreachable_and_bad_use() -> None:
    code, out, err = await mmate("health", f"127.0.0.1:{_free_port()}", "--timeout", "5")
    assert code == 1 and out == "" and err.startswith("mmate health: error: cannot reach")
    assert "Traceback" not in err
    assert (await mmate("health", "ftp://example"))[0] == 2
    assert (await mmate("health", "localhost:1", "--timeout", "0"))[0] == 2
    assert (await mmate("health"))[0] == 2
