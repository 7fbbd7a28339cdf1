"""Endpoint contracts extracted from a client's handlers (mmate-go ``contract_extractor.go``, with the
real service queue and schemas of the wire JSON): endpoint id ``{service}.{Type}``, version
``1.0.0``, description ``Handles {Type} messages``, timeout ``30s``, 3 retries; output type: the
reply class registered for the request (``register(X, reply=Y)``), else Go's name rule for commands
and queries (``XCommand``->``XReply``, ``ProcessXCommand``->``XProcessedReply``, ``GetXQuery``->
``XReply``, ``XQuery``->``XReply``), else ``None``. Schemas are draft-07, as Go announces them."""
from __future__ import annotations

from typing import Any

from mmate_fast.contracts import MessageKind, TypeRegistry, json_schema, kind_of, message_type, reply_type_of
from mmate_fast.discovery._contract import EndpointContract
from mmate_fast.errors import ContractError

NO_OUTPUT = "None"


def infer_reply_type(type_name: str) -> str:
    """Go's ``inferReplyType``: the reply type name guessed from a request type name ("" if none)."""
    if len(type_name) > 7 and type_name.endswith("Command"):
        base = type_name[:-7]
        if len(base) > 7 and base.startswith("Process"):
            return base[7:] + "ProcessedReply"
        return base + "Reply"
    if len(type_name) > 5 and type_name.endswith("Query"):
        base = type_name[:-5]
        if len(base) > 3 and base.startswith("Get"):
            return base[3:] + "Reply"
        return base + "Reply"
    return ""


def schema_of(cls: type | None) -> dict[str, Any] | None:
    """The draft-07 schema of a contract class (None for None or a class that has none)."""
    if cls is None:
        return None
    try:
        return json_schema(cls, "draft-07")
    except ContractError:
        return None


def endpoint_for(cls: type, service_name: str, queue: str, registry: TypeRegistry, *,
                 version: str = "1.0.0", timeout: str = "30s", max_retries: int = 3) -> EndpointContract:
    """The contract of a handler for message class ``cls`` served on ``queue``."""
    type_name = message_type(cls)
    reply_cls = reply_type_of(cls)
    if reply_cls is not None:
        output = message_type(reply_cls)
    elif kind_of(cls) in (MessageKind.COMMAND, MessageKind.QUERY):
        output = infer_reply_type(type_name) or NO_OUTPUT
        reply_cls = registry.resolve(output) if output != NO_OUTPUT else None
    else:
        output = NO_OUTPUT
    return EndpointContract(
        endpoint_id=f"{service_name}.{type_name}", version=version, service_name=service_name,
        description=f"Handles {type_name} messages", queue=queue, input_type=type_name,
        output_type=output, input_schema=schema_of(cls), output_schema=schema_of(reply_cls),
        timeout=timeout, max_retries=max_retries)


__all__ = ["NO_OUTPUT", "endpoint_for", "infer_reply_type", "schema_of"]
