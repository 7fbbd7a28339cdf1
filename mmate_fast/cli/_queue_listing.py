"""Where the command line gets the queues of a RabbitMQ broker (AMQP has no method to list them).

1. The management HTTP API of the broker the AMQP URL points at (``_management``). A derived API
   address must belong to that broker: when it answers for a node that does not serve the URL's
   AMQP port (another broker on the same host), that is an error, not a list of the wrong queues.
2. Only when that API does not answer and the broker is the local node: ``rabbitmqctl``, which
   talks to the local default node; its listeners are checked to serve the URL's AMQP port too.

The result says which source it came from, so the output can say so.
"""
from __future__ import annotations

import asyncio
import json
import re
import shutil
from dataclasses import dataclass
from typing import Any

from mmate_fast import errors
from mmate_fast.amqp.url import ConnectionParameters
from mmate_fast.cli._management import ManagementAPI, amqp_listener_ports, endpoint_for, is_local

API, RABBITMQCTL = "management-api", "rabbitmqctl"
#: seconds a rabbitmqctl / rabbitmq-diagnostics call may take
CTL_TIMEOUT = 30.0
_ENABLE = ("enable the management plugin (rabbitmq-plugins enable rabbitmq_management) or pass "
           "--management-url")


@dataclass
class QueueListing:
    """Queues of one vhost and where the list came from."""

    source: str
    vhost: str
    #: ``(name, messages)``; messages is None where the API has no statistics of the queue yet
    rows: list[tuple[str, int | None]]
    #: the management API's URL (source API) or the node's name (source rabbitmqctl)
    where: str
    #: why the management API was not the source ("" when it was)
    fallback_reason: str = ""

    def describe(self) -> str:
        """One line for people: which source, and why not the API when it was not."""
        if self.source == API:
            return f"RabbitMQ management API at {self.where} (vhost {self.vhost})"
        return f"rabbitmqctl (node {self.where}); the {self.fallback_reason}"

    def as_json(self) -> dict[str, Any]:
        """The source fields of ``mmate dlq list --json``."""
        if self.source == API:
            return {"source": API, "management_url": self.where, "vhost": self.vhost}
        return {"source": RABBITMQCTL, "node": self.where, "vhost": self.vhost,
                "fallback_reason": self.fallback_reason}


async def list_queues(amqp: ConnectionParameters, management_url: str | None, *,
                      name_regex: str) -> QueueListing:
    """The queues of ``amqp``'s vhost whose names match ``name_regex`` (a PCRE, as the API takes it),
    from the management API, else (local node only) from rabbitmqctl. Raises ManagementAPIError when
    the API answers with an error, ManagementAPIUnreachableError when no source can list."""
    api = ManagementAPI(endpoint_for(amqp, management_url))
    try:
        return await asyncio.to_thread(_from_api, api, amqp, name_regex)
    except errors.ManagementAPIUnreachableError as exc:
        if not is_local(amqp.host):
            raise errors.ManagementAPIUnreachableError(
                f"{exc}; {amqp.host} is not the local node, so rabbitmqctl cannot stand in: {_ENABLE}",
                url=api.url) from None
        reason = str(exc)
    return await _from_rabbitmqctl(amqp, name_regex, reason)


def _from_api(api: ManagementAPI, amqp: ConnectionParameters, name_regex: str) -> QueueListing:
    if api.endpoint.derived:
        check_same_broker(api, amqp)
    queues = api.queues(amqp.virtual_host, name_regex)
    rows = [(str(row["name"]), _count(row.get("messages"))) for row in queues]
    return QueueListing(API, amqp.virtual_host, rows, api.url)


def check_same_broker(api: ManagementAPI, amqp: ConnectionParameters) -> None:
    """The derived API must be the one of the broker on ``amqp``'s port (another broker on the same
    host may have it): refuse to list another broker's queues."""
    found = api.amqp_ports()
    if found is None:
        return  # the user may not see the listeners: nothing to compare
    node, ports = found
    if amqp.port not in ports:
        raise errors.ManagementAPIError(
            f"the management API at {api.url} belongs to node {node}, which does not serve AMQP port "
            f"{amqp.port} of --url (it serves {', '.join(map(str, sorted(ports))) or 'none'}): pass "
            f"--management-url with the API of the broker at {amqp.host}:{amqp.port}", url=api.url)


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


# ---------------------------------------------------------------------------- rabbitmqctl
async def _from_rabbitmqctl(amqp: ConnectionParameters, name_regex: str, reason: str) -> QueueListing:
    ctl, diagnostics = shutil.which("rabbitmqctl"), shutil.which("rabbitmq-diagnostics")
    if ctl is None or diagnostics is None:
        missing = "rabbitmqctl" if ctl is None else "rabbitmq-diagnostics"
        raise errors.ManagementAPIUnreachableError(f"{reason}, and {missing} is not installed here to stand "
                                                   f"in for it: {_ENABLE}")
    # both at once (each starts an Erlang VM: about a second); both always finish (no orphan)
    results: tuple[Any, ...] = await asyncio.gather(
        _ctl_json(diagnostics, "-q", "listeners", "--formatter", "json"),
        _ctl_json(ctl, "list_queues", "-p", amqp.virtual_host, "-q", "name", "messages", "--formatter",
                  "json"), return_exceptions=True)
    for result in results:
        if isinstance(result, _ToolFailed):
            raise errors.ManagementAPIUnreachableError(f"{reason}, and {result}") from None
        if isinstance(result, BaseException):
            raise result
    listeners, listing = results
    if not isinstance(listeners, dict) or not isinstance(listing, list):
        raise errors.ManagementAPIUnreachableError(f"{reason}, and rabbitmqctl answered in an unknown form")
    node = str(listeners.get("node") or "?")
    ports = amqp_listener_ports(listeners.get("listeners") or [])
    if amqp.port not in ports:
        raise errors.ManagementAPIUnreachableError(
            f"{reason}, and rabbitmqctl reaches node {node}, which does not serve AMQP port {amqp.port} of "
            f"--url (it serves {', '.join(map(str, sorted(ports))) or 'none'}): {_ENABLE}")
    pattern = re.compile(name_regex)
    rows = [(str(r["name"]), _count(r.get("messages"))) for r in listing
            if isinstance(r, dict) and pattern.search(str(r.get("name", "")))]
    return QueueListing(RABBITMQCTL, amqp.virtual_host, rows, node, reason)


class _ToolFailed(Exception):
    """A RabbitMQ CLI tool failed; the message says how (it ends up in a ManagementAPIUnreachableError)."""


async def _ctl_json(exe: str, *args: str) -> Any:
    """Run a RabbitMQ CLI tool with ``--formatter json``; its decoded output (_ToolFailed otherwise)."""
    name = exe.rsplit("/", 1)[-1]
    proc = await asyncio.create_subprocess_exec(exe, *args, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE)
    try:
        out, err = await asyncio.wait_for(proc.communicate(), CTL_TIMEOUT)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise _ToolFailed(f"{name} did not finish within {CTL_TIMEOUT:.0f} s") from None
    if proc.returncode != 0:
        text = (err or out).decode("utf-8", "replace").strip().splitlines()
        last = text[-1] if text else "no output"
        raise _ToolFailed(f"{name} failed (exit {proc.returncode}): {last}")
    try:
        return json.loads(out or b"[]")
    except ValueError:
        raise _ToolFailed(f"{name} printed something other than JSON") from None


__all__ = ["API", "RABBITMQCTL", "QueueListing", "check_same_broker", "list_queues"]
