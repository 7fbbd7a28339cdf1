"""The discovery contracts of mmate-go (wire-protocol.md §9.1, §9.2, §9.3), with Go's JSON keys:
``EndpointContract`` and the messages ``ContractAnnouncement``, ``ContractDiscoveryRequest`` and
``ContractDiscoveryResponse`` (registered under those type names; no kind header, as Go sends them).
Payload keys are sorted by the envelope codec at every level, schemas included, as Go's are."""
from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from typing import Any

from mmate_fast.contracts import Message, wire_field
from mmate_fast.discovery._matching import contract_matches

REGISTERED = "registered"
UNREGISTERED = "unregistered"


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


@dataclass
class EndpointContract:
    """One discoverable endpoint (Go ``contracts.EndpointContract``). Valid (Go's ``IsValid``) when
    ``endpoint_id``, ``queue``, ``input_type``, ``output_type`` and ``service_name`` are non-empty.
    Schemas are JSON Schema objects (draft-07 as Go announces them); ``timeout`` is Go duration text
    (``"30s"``)."""

    endpoint_id: str = ""
    version: str = ""
    service_name: str = ""
    description: str = ""
    queue: str = ""
    input_type: str = ""
    output_type: str = ""
    # a field() with metadata, default None (nothing shared)
    input_schema: dict[str, Any] | None = wire_field(omitempty=True, default=None)  # noqa: RUF009
    output_schema: dict[str, Any] | None = wire_field(omitempty=True, default=None)  # noqa: RUF009
    timeout: str = wire_field(omitempty=True, default="")
    max_retries: int = wire_field(omitempty=True, default=0)
    created_at: datetime.datetime = field(default_factory=_now)
    updated_at: datetime.datetime = field(default_factory=_now)
    ttl: str = wire_field(omitempty=True, default="")

    @property
    def is_valid(self) -> bool:
        return bool(self.endpoint_id and self.queue and self.input_type and self.output_type
                    and self.service_name)

    def matches(self, pattern: str = "", version: str = "") -> bool:
        """Go's ``Matches``: endpoint id pattern (``*`` wildcards) and version constraint."""
        return contract_matches(self.endpoint_id, self.version, pattern, version)


@dataclass
class ContractAnnouncement(Message):
    """Published to ``mmate.contracts`` / ``contract.announce``: ``action`` is ``registered`` or
    ``unregistered``."""

    action: str = REGISTERED
    contracts: list[EndpointContract] = field(default_factory=list)


@dataclass
class ContractDiscoveryRequest(Message):
    """Sent to queue ``contract.discover`` with the reply address ``rpl.{id}``."""

    pattern: str = ""
    version: str = wire_field(omitempty=True, default="")


@dataclass
class ContractDiscoveryResponse(Message):
    """The answer to a request, to its reply address, ``correlationId`` = the request's id."""

    contracts: list[EndpointContract] = field(default_factory=list)


__all__ = ["REGISTERED", "UNREGISTERED", "ContractAnnouncement", "ContractDiscoveryRequest",
           "ContractDiscoveryResponse", "EndpointContract"]
