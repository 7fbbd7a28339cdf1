"""``open_store(url)``: the URL picks the backend (``memory://``, ``sqlite:///``, ``postgresql://``).

Backends are imported only when their scheme is asked for, so the PostgreSQL driver (an optional
extra) is never needed by the others.
"""
from __future__ import annotations

from urllib.parse import SplitResult, urlsplit

from mmate_fast.errors import InvalidArgumentError
from mmate_fast.stageflow.store._record import FlowStore

#: the schemes open_store accepts, as its error message lists them
SCHEMES = ("memory://", "sqlite:///path.db", "sqlite:///:memory:", "postgresql://user@host:port/db")


def redact(url: str) -> str:
    """``url`` with its password replaced by ``***`` (for messages and logs)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparsable URL>"
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        port = None
    netloc = f"{user}:***@{host}" + (f":{port}" if port is not None else "")
    return SplitResult(parts.scheme, netloc, parts.path, parts.query, parts.fragment).geturl()


def open_store(url: str) -> FlowStore:
    """Open the state store at ``url``: ``memory://`` (private) or ``memory://NAME`` (shared in the
    process), ``sqlite:///path.db`` (relative; ``sqlite:////abs/path.db`` absolute;
    ``sqlite:///:memory:``), ``postgresql://user:password@host:port/db`` (``postgres://`` too).
    SQLite opens the file and creates the schema now; PostgreSQL connects on first use."""
    if not isinstance(url, str) or "://" not in url:
        raise InvalidArgumentError(f"flow store URL {url!r} has no scheme: use one of "
                                   f"{', '.join(SCHEMES)}", argument="url")
    scheme = url.split("://", 1)[0].lower()
    if scheme == "memory":
        from mmate_fast.stageflow.store._memory import MemoryFlowStore

        rest = url.split("://", 1)[1]
        if "/" in rest or "?" in rest or "#" in rest:
            raise InvalidArgumentError(f"memory store URL {url!r}: use memory:// or memory://NAME "
                                       "(a name without '/', '?' or '#')", argument="url")
        return MemoryFlowStore(rest)
    if scheme == "sqlite":
        from mmate_fast.stageflow.store._sqlite import SQLiteFlowStore

        return SQLiteFlowStore.from_url(url)
    if scheme in ("postgresql", "postgres"):
        from mmate_fast.stageflow.store._postgres import PostgresFlowStore

        return PostgresFlowStore.from_url(url)
    raise InvalidArgumentError(f"flow store URL scheme {scheme!r} is unknown ({redact(url)}): use one of "
                               f"{', '.join(SCHEMES)}", argument="url")


__all__ = ["SCHEMES", "open_store", "redact"]
