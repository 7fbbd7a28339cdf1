"""Contract discovery (wire-protocol.md §9): endpoint contracts extracted from a Client's handlers,
announced on ``mmate.contracts`` as mmate-go announces them, a live registry of everyone's
announcements, discovery requests over the broker and their answers, Go's matching rules.

    async with Client(url, service_name="orders", discovery=True) as client:
        ...
        found = await client.discover("orders.*", version="^1.2")
"""
from __future__ import annotations

from mmate_fast.discovery._announcer import ANNOUNCE_KEY, CONTRACTS_EXCHANGE, Announcer
from mmate_fast.discovery._asyncapi import ASYNCAPI_VERSION, asyncapi, asyncapi_document
from mmate_fast.discovery._contract import (
    REGISTERED,
    UNREGISTERED,
    ContractAnnouncement,
    ContractDiscoveryRequest,
    ContractDiscoveryResponse,
    EndpointContract,
)
from mmate_fast.discovery._discovery import Discovery, DiscoveryOptions
from mmate_fast.discovery._extract import endpoint_for, infer_reply_type
from mmate_fast.discovery._matching import contract_matches, pattern_matches, version_matches
from mmate_fast.discovery._query import DISCOVER_QUEUE
from mmate_fast.discovery._registry import ContractRegistry

__all__ = [
    "ANNOUNCE_KEY",
    "ASYNCAPI_VERSION",
    "CONTRACTS_EXCHANGE",
    "DISCOVER_QUEUE",
    "REGISTERED",
    "UNREGISTERED",
    "Announcer",
    "ContractAnnouncement",
    "ContractDiscoveryRequest",
    "ContractDiscoveryResponse",
    "ContractRegistry",
    "Discovery",
    "DiscoveryOptions",
    "EndpointContract",
    "asyncapi",
    "asyncapi_document",
    "contract_matches",
    "endpoint_for",
    "infer_reply_type",
    "pattern_matches",
    "version_matches",
]
