"""Build the ``ssl.SSLContext`` for ``amqps://`` from the URL's TLS options.

TLS 1.2 is the minimum; the CA file (else the system store) verifies the broker, with the host name
checked, unless ``verify=verify_none``; a client certificate chain is loaded when given (needed for
``auth_mechanism=external``). Bad files raise InvalidURLError naming the option, not the contents.
"""
from __future__ import annotations

import ssl
from typing import TYPE_CHECKING

from mmate_fast.errors import InvalidURLError

if TYPE_CHECKING:
    from mmate_fast.amqp.url import ConnectionParameters


def build_context(*, cacertfile: str | None = None, certfile: str | None = None,
                  keyfile: str | None = None, verify: bool = True) -> ssl.SSLContext:
    """A client-side SSLContext: TLS >= 1.2, CA file or system CAs, optional client cert chain."""
    if keyfile and not certfile:
        raise InvalidURLError("TLS option keyfile needs certfile (the client certificate) too")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if verify:
        ctx.check_hostname = True
        ctx.verify_mode = ssl.CERT_REQUIRED
        try:
            if cacertfile:
                ctx.load_verify_locations(cafile=cacertfile)
            else:
                ctx.load_default_certs(ssl.Purpose.SERVER_AUTH)
        except (OSError, ssl.SSLError) as exc:
            raise InvalidURLError(
                f"TLS option cacertfile={cacertfile!r} cannot be loaded: {_reason(exc)}") from None
    else:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if certfile:
        try:
            # a password callback, so an encrypted key fails instead of prompting on the terminal
            ctx.load_cert_chain(certfile, keyfile or None, password=_no_password)
        except (OSError, ssl.SSLError) as exc:
            raise InvalidURLError(
                f"TLS options certfile={certfile!r}/keyfile={keyfile!r} cannot be loaded (missing file, "
                f"not PEM, key does not match, or an encrypted key): {_reason(exc)}") from None
    return ctx


def context_for(params: ConnectionParameters) -> ssl.SSLContext:
    """The context to use for ``params``: the one passed in (``ssl_context=``), else one built
    from its TLS options."""
    if params.ssl_context is not None:
        return params.ssl_context
    return build_context(cacertfile=params.cacertfile, certfile=params.certfile,
                         keyfile=params.keyfile, verify=params.verify)


def _no_password() -> bytes:
    return b""


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


__all__ = ["build_context", "context_for"]
