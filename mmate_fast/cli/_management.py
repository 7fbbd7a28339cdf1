"""The RabbitMQ management HTTP API, as far as the command line needs it: the queues of a vhost and
the AMQP ports of the broker that answers.

Its address comes from ``--management-url`` or is derived from the AMQP URL (same host, ``http`` on
15672, or ``https`` on 15671 for ``amqps``, RabbitMQ's default ports; the AMQP URL's user, password
and TLS settings). The HTTP client is the stdlib's ``urllib``: a few GET requests with basic auth
and JSON need no new dependency. Every request has a timeout. ``ManagementAPIUnreachableError``
means nothing answered (refused, unknown host, timeout); ``ManagementAPIError`` that it answered
with an error. Messages name the API without credentials.
"""
from __future__ import annotations

import base64
import http.client
import ipaddress
import json
import re
import ssl
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, unquote, urlencode, urlsplit

from mmate_fast import errors
from mmate_fast.amqp.url import ConnectionParameters

HTTP_PORT = 15672
HTTPS_PORT = 15671
#: the largest page the API serves (``page_size`` above it is a 400)
PAGE_SIZE = 500
TIMEOUT = 10.0
#: the queue columns ``queue_stats`` asks for (the API takes nested keys with dots)
STATS_COLUMNS = ("name", "messages", "messages_ready", "messages_unacknowledged", "consumers",
                 "message_stats.publish_details.rate", "message_stats.deliver_get_details.rate",
                 "message_stats.ack_details.rate")
_AMQP_PROTOCOLS = frozenset({"amqp", "amqp/ssl"})


@dataclass(frozen=True)
class Endpoint:
    """Where the management API is and how to log in to it."""

    #: ``scheme://host:port/prefix/`` without credentials (printed, and the base of every request)
    url: str
    username: str
    password: str = field(repr=False)
    ssl_context: ssl.SSLContext | None = field(default=None, repr=False, compare=False)
    #: True when derived from the AMQP URL (not given with ``--management-url``)
    derived: bool = True


def _host_text(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def endpoint_for(amqp: ConnectionParameters, management_url: str | None = None) -> Endpoint:
    """The API of the broker at ``amqp``: ``management_url`` when given (its own credentials when it
    carries any, else the AMQP URL's), else derived from ``amqp``."""
    tls_context = amqp.ssl_context if amqp.tls else None
    if management_url is None:
        scheme, default_port = ("https", HTTPS_PORT) if amqp.tls else ("http", HTTP_PORT)
        return Endpoint(f"{scheme}://{_host_text(amqp.host)}:{default_port}/", amqp.username, amqp.password,
                        tls_context, derived=True)
    try:
        parts = urlsplit(management_url)
        port = parts.port
        host = parts.hostname
    except ValueError:  # its text may quote the password: never pass it on
        raise errors.InvalidURLError("cannot parse --management-url (malformed host or port)") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not host:
        raise errors.InvalidURLError("--management-url must look like http://host:15672/ or https://host:15671/")
    if parts.query or parts.fragment:
        raise errors.InvalidURLError("--management-url takes no query or fragment")
    netloc = _host_text(host) + (f":{port}" if port is not None else "")
    prefix = parts.path.rstrip("/") + "/"
    username = unquote(parts.username) if parts.username is not None else amqp.username
    password = unquote(parts.password) if parts.password is not None else (
        amqp.password if parts.username is None else "")
    context = (tls_context or ssl.create_default_context()) if scheme == "https" else None
    return Endpoint(f"{scheme}://{netloc}{prefix}", username, password, context, derived=False)


def amqp_listener_ports(listeners: Any) -> set[int]:
    """The ports of the AMQP listeners in a RabbitMQ listener list (``[{"protocol", "port", ...}]``,
    as the API's overview and ``rabbitmq-diagnostics listeners`` give it)."""
    if not isinstance(listeners, list):
        return set()
    return {lst["port"] for lst in listeners if isinstance(lst, dict) and
            lst.get("protocol") in _AMQP_PROTOCOLS and isinstance(lst.get("port"), int)}


def is_local(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (the node a local ``rabbitmqctl`` may reach)."""
    if host.lower() in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect is an error answer: urllib would send the credentials on to wherever it points."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


class ManagementAPI:
    """Read-only requests to one management API."""

    def __init__(self, endpoint: Endpoint, timeout: float = TIMEOUT) -> None:
        self.endpoint = endpoint
        self.timeout = timeout
        token = base64.b64encode(f"{endpoint.username}:{endpoint.password}".encode()).decode("ascii")
        self._auth = f"Basic {token}"
        self._opener = urllib.request.build_opener(_NoRedirects(),
                                                   urllib.request.HTTPSHandler(context=endpoint.ssl_context))

    @property
    def url(self) -> str:
        return self.endpoint.url

    def get(self, path: str, query: dict[str, str] | None = None) -> Any:
        """GET ``api/PATH?QUERY`` and decode its JSON (blocking: run it in a thread from a loop)."""
        target = f"{self.url}api/{path}" + (f"?{urlencode(query)}" if query else "")
        request = urllib.request.Request(target, headers={"Authorization": self._auth,
                                                          "Accept": "application/json"})
        try:
            with self._opener.open(request, timeout=self.timeout) as response:
                body = response.read()
        except urllib.error.HTTPError as exc:
            raise self._http_error(exc) from None
        except urllib.error.URLError as exc:
            reason = exc.reason
            if isinstance(reason, ssl.SSLError):
                raise errors.ManagementAPIError(
                    f"TLS with the management API at {self.url} failed ({reason}): check its certificate, "
                    "or the CA of --url's cacertfile", url=self.url) from None
            raise self._unreachable(reason) from None
        except (TimeoutError, OSError) as exc:
            raise self._unreachable(exc) from None
        except http.client.HTTPException as exc:
            raise errors.ManagementAPIError(
                f"{self.url} does not speak HTTP ({type(exc).__name__}): is it the AMQP port? The "
                f"management API listens on {HTTP_PORT} (http) or {HTTPS_PORT} (https) by default",
                url=self.url) from None
        try:
            return json.loads(body)
        except ValueError:
            raise errors.ManagementAPIError(f"{self.url} answered {target[len(self.url):]!r} with something "
                                            "other than JSON: is it the RabbitMQ management API?",
                                            url=self.url) from None

    def queues(self, vhost: str, name_regex: str) -> list[dict[str, Any]]:
        """``{"name", "messages"}`` of every queue of ``vhost`` whose name matches ``name_regex``
        (``messages`` is missing while the broker has no statistics of a new queue yet)."""
        return self._queue_pages(vhost, {"name": name_regex, "use_regex": "true", "columns": "name,messages"})

    def queue_stats(self, vhost: str) -> list[dict[str, Any]]:
        """Every queue of ``vhost`` with the columns of :data:`STATS_COLUMNS` (counts, consumers and
        the ``message_stats`` rates; keys are missing while the broker has no statistics of them)."""
        return self._queue_pages(vhost, {"columns": ",".join(STATS_COLUMNS)})

    def _queue_pages(self, vhost: str, query: dict[str, str]) -> list[dict[str, Any]]:
        """The rows of ``queues/VHOST?QUERY``, page after page."""
        items: list[dict[str, Any]] = []
        page = 1
        while True:
            paged = {"page": str(page), "page_size": str(PAGE_SIZE), **query}
            try:
                result = self.get(f"queues/{quote(vhost, safe='')}", paged)
            except errors.ManagementAPIError as exc:
                if exc.status == 404:
                    raise errors.ManagementAPIError(
                        f"vhost {vhost!r} does not exist on the broker of the management API at {self.url}",
                        404, self.url) from None
                if exc.status == 400 and page > 1 and "page_out_of_range" in str(exc):
                    break  # queues were deleted while we paged
                raise
            if not isinstance(result, dict) or not isinstance(result.get("items"), list):
                raise errors.ManagementAPIError(f"{self.url} answered the queue list in an unknown form: "
                                                "is it the RabbitMQ management API (3.6 or newer)?",
                                                url=self.url)
            items.extend(row for row in result["items"] if isinstance(row, dict) and "name" in row)
            if page >= int(result.get("page_count") or 0):
                return items
            page += 1
        return items

    def amqp_ports(self) -> tuple[str, set[int]] | None:
        """``(node, ports)``: the broker's node name and the ports its AMQP listeners serve; None
        when the user may not see them."""
        overview = self.get("overview", {"columns": "node,listeners"})
        listeners = overview.get("listeners") if isinstance(overview, dict) else None
        if not isinstance(listeners, list) or not listeners:
            return None
        return str(overview.get("node") or "?"), amqp_listener_ports(listeners)

    # ------------------------------------------------------------------ errors
    def _unreachable(self, reason: object) -> errors.ManagementAPIUnreachableError:
        why = getattr(reason, "strerror", None) or str(reason) or type(reason).__name__
        return errors.ManagementAPIUnreachableError(f"management API at {self.url} did not answer ({why})",
                                                    url=self.url)

    def _http_error(self, exc: urllib.error.HTTPError) -> errors.ManagementAPIError:
        detail = _error_reason(exc)
        if exc.code == 401:
            return errors.ManagementAPIError(
                f"management API at {self.url} refused the login of user {self.endpoint.username!r} (HTTP 401"
                f"{': ' + detail if detail else ''}): check the user and password (of --url, or in "
                "--management-url); the user needs the 'management' or 'monitoring' tag", 401, self.url)
        return errors.ManagementAPIError(f"management API at {self.url} answered HTTP {exc.code} {exc.reason}"
                                         f"{': ' + detail if detail else ''}", exc.code, self.url)


def _error_reason(exc: urllib.error.HTTPError) -> str:
    """The ``{"error", "reason"}`` of an error answer, shortened; "" when there is none."""
    try:
        data = json.loads(exc.read() or b"null")
    except (ValueError, OSError):
        return ""
    if not isinstance(data, dict):
        return ""
    text = " ".join(str(data[k]) for k in ("error", "reason") if data.get(k))
    return re.sub(r"\s+", " ", text)[:300]


__all__ = ["HTTPS_PORT", "HTTP_PORT", "STATS_COLUMNS", "Endpoint", "ManagementAPI", "amqp_listener_ports",
           "endpoint_for", "is_local"]
