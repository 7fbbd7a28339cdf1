"""``mmate contracts list|show|export`` run as a subprocess against the real broker, while a service of
this process (discovery on) serves two endpoints: the table for people, JSON for scripts, AsyncAPI
export, exit codes."""
from __future__ import annotations

import asyncio
import json
import os
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from mmate_fast.client import Client
from mmate_fast.contracts import Command, Query, Reply, register
from mmate_fast.discovery import DiscoveryOptions
from mmate_fast.messaging import topology
from mmate_fast.transports import connect

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
ASYNCAPI_SCHEMA = json.loads((ROOT / "tests" / "data" / "asyncapi" / "asyncapi-3.0.0.schema.json").read_text())


@dataclass
class CliGetPriceQuery(Query):
    sku: str = ""


@dataclass
class CliPriceReply(Reply):
    price: float = 0.0


@dataclass
class CliSetPriceCommand(Command):
    sku: str = ""
    price: float = 0.0


register(CliGetPriceQuery, reply=CliPriceReply)


async def mmate(*args: str, timeout: float = 60) -> tuple[int, str, str]:
    """Run ``python -m mmate_fast.cli ARGS``; (exit code, stdout, stderr)."""
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
           "COLUMNS": "200"}
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "mmate_fast.cli", *args, cwd=ROOT, env=env,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), timeout)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


@pytest.fixture
async def service(rabbitmq_url: str) -> AsyncIterator[str]:
    name = f"cli-prices-{uuid.uuid4().hex[:8]}"
    async with Client(rabbitmq_url, service_name=name, discovery=DiscoveryOptions(interval=1)) as c:
        c.add_handler(CliGetPriceQuery, lambda q: CliPriceReply(price=2.0))
        c.add_handler(CliSetPriceCommand, lambda c: None)
        await c.start_consuming()
        yield name
    conn = await connect(rabbitmq_url)
    ch = await conn.channel()
    await ch.queue_delete(topology.service_queue(name))
    await conn.close()


async def test_list_json_and_table(service: str, rabbitmq_url: str) -> None:
    rc, out, err = await mmate("contracts", "list", "--url", rabbitmq_url, "--pattern", f"{service}.*", "--json")
    assert (rc, err) == (0, "")
    contracts = json.loads(out)["contracts"]
    assert [c["endpointId"] for c in contracts] == [f"{service}.CliGetPriceQuery", f"{service}.CliSetPriceCommand"]
    q = contracts[0]
    assert list(q) == sorted(q)  # Go's keys, sorted
    assert (q["queue"], q["outputType"], q["timeout"], q["maxRetries"]) == (
        f"{service}-queue", "CliPriceReply", "30s", 3)
    rc, out, _ = await mmate("contracts", "list", "--url", rabbitmq_url, "--pattern", f"{service}.*")
    assert rc == 0
    assert "2 endpoint contract(s)" in out and f"{service}.CliSetPriceCommand" in out and "SERVICE" in out


async def test_show_one_endpoint(service: str, rabbitmq_url: str) -> None:
    rc, out, _ = await mmate("contracts", "show", f"{service}.CliGetPriceQuery", "--url", rabbitmq_url, "--json")
    assert rc == 0
    shown = json.loads(out)
    assert shown["endpointId"] == f"{service}.CliGetPriceQuery"
    assert shown["outputSchema"]["properties"]["price"] == {"type": "number"}
    rc, out, _ = await mmate("contracts", "show", f"{service}.CliGetPriceQuery", "--url", rabbitmq_url)
    assert rc == 0 and "inputSchema:" in out and "CliPriceReply" in out


async def test_export_asyncapi_and_json(service: str, rabbitmq_url: str, tmp_path: Path) -> None:
    target = tmp_path / "api.json"
    rc, out, _ = await mmate("contracts", "export", "--url", rabbitmq_url, "--pattern", f"{service}.*",
                             "--output", str(target))
    assert rc == 0 and "wrote" in out
    doc: dict[str, Any] = json.loads(target.read_text())
    assert doc["asyncapi"] == "3.0.0"
    assert list(jsonschema.Draft7Validator(ASYNCAPI_SCHEMA).iter_errors(doc)) == []
    assert "guest" not in target.read_text()  # no credentials in the document
    assert set(doc["operations"]) == {f"{service}--receive-CliGetPriceQuery", f"{service}--receive-CliSetPriceCommand"}
    rc, out, _ = await mmate("contracts", "export", "--format", "json", "--url", rabbitmq_url,
                             "--pattern", f"{service}.*")
    assert rc == 0 and len(json.loads(out)["contracts"]) == 2


async def test_exit_codes(rabbitmq_url: str) -> None:
    rc, _, err = await mmate("contracts", "show", f"nothing-{uuid.uuid4().hex}.X", "--url", rabbitmq_url,
                             "--wait", "0.5")
    assert rc == 1 and "no endpoint" in err and "Traceback" not in err
    rc, _, err = await mmate("contracts", "list", "--url", "amqp://guest:guest@127.0.0.1:1/", "--wait", "0.5")
    assert rc == 1 and err.startswith("mmate contracts: error:") and "Traceback" not in err
    rc, _, err = await mmate("contracts", "list", "--wait", "-1")
    assert rc == 2
    rc, _, err = await mmate("contracts")
    assert rc == 2
    rc, out, _ = await mmate("contracts", "list", "--url", "memory://empty", "--json", "--wait", "0.2")
    assert rc == 0 and json.loads(out) == {"contracts": []}
