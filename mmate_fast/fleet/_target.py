"""``module:attr`` -> something that makes the worker's :class:`~mmate_fast.client.Client`.

``attr`` is a Client (built when the module is imported) or a zero-argument factory returning one,
plain or ``async`` (called in the worker, on its event loop). ``attr`` may be dotted
(``module:app.client``). With ``factory=True`` the attribute must be callable; with ``False`` it must
be a Client; ``None`` (the default) takes whichever it is.
"""
from __future__ import annotations

import importlib
import inspect
import sys
from collections.abc import Callable
from typing import Any

from mmate_fast import errors
from mmate_fast.client import Client

#: what a loaded target is: a coroutine function or plain function that returns the Client
MakeClient = Callable[[], Any]


def parse_target(spec: str) -> tuple[str, str]:
    """``"pkg.mod:attr"`` -> ``("pkg.mod", "attr")``; FleetTargetError for anything else."""
    module, sep, attr = spec.partition(":")
    if not sep or not module or not attr or any(not part.isidentifier() for part in module.split(".")) \
            or any(not part.isidentifier() for part in attr.split(".")):
        raise errors.FleetTargetError(
            f"the service must be given as MODULE:ATTRIBUTE (e.g. myapp.service:make_client), got {spec!r}")
    return module, attr


def load_target(spec: str, *, factory: bool | None = None) -> MakeClient:
    """Import ``spec``'s module and return a zero-argument callable making the Client (its result may
    be awaitable); FleetTargetError when the module does not import or the attribute does not fit."""
    module_name, attr = parse_target(spec)
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and module_name.startswith(exc.name):
            raise errors.FleetTargetError(
                f"cannot import {module_name!r}: no such module (is its directory the current one, "
                f"or given with --app-dir? sys.path[0] is {sys.path[0]!r})") from exc
        raise errors.FleetTargetError(f"importing {module_name!r} failed: {exc}") from exc
    except Exception as exc:
        raise errors.FleetTargetError(f"importing {module_name!r} failed: {type(exc).__name__}: {exc}") \
            from exc
    obj: Any = module
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise errors.FleetTargetError(f"{module_name!r} has no attribute {attr!r}") from None
    if isinstance(obj, Client):
        if factory:
            raise errors.FleetTargetError(
                f"{spec} is a Client, not a factory: drop --factory, or point at a function returning one")
        client = obj
        return lambda: client
    if not callable(obj):
        raise errors.FleetTargetError(f"{spec} is a {type(obj).__name__}, neither a Client nor a "
                                      "zero-argument function returning one")
    if factory is False:
        raise errors.FleetTargetError(f"{spec} is a callable, not a Client: pass --factory")
    try:
        inspect.signature(obj).bind()
    except TypeError:
        raise errors.FleetTargetError(f"{spec} must be callable without arguments (a factory)") from None
    except ValueError:  # no signature to inspect (a builtin): try it
        pass
    return obj


async def make_client(make: MakeClient, spec: str = "the factory") -> Client:
    """Call the factory (awaiting what it returns when awaitable); FleetTargetError unless a Client."""
    result = make()
    if inspect.isawaitable(result):
        result = await result
    if not isinstance(result, Client):
        raise errors.FleetTargetError(f"{spec} returned {type(result).__name__}, not a mmate_fast Client")
    return result


__all__ = ["MakeClient", "load_target", "make_client", "parse_target"]
