"""What the patterns share: the ``proxy.method(**kwargs)`` call syntax and the (pickle) serializer."""
from __future__ import annotations

import pickle
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

T = TypeVar("T")
CallbackType = Callable[..., Awaitable[T]]


class Method:
    """``proxy.a.b(**kwargs)`` calls ``func("a.b", kwargs=kwargs)``."""

    __slots__ = ("func", "name")

    def __init__(self, name: str, func: Callable[..., Any]) -> None:
        self.name = name
        self.func = func

    def __getattr__(self, item: str) -> Method:
        return Method(f"{self.name}.{item}", self.func)

    def __call__(self, **kwargs: Any) -> Any:
        return self.func(self.name, kwargs=kwargs)


class Proxy:
    """Attribute access gives a :class:`Method` bound to ``func``."""

    __slots__ = ("func",)

    def __init__(self, func: Callable[..., Any]) -> None:
        self.func = func

    def __getattr__(self, item: str) -> Method:
        return Method(item, self.func)


class Base:
    """Serialize with ``SERIALIZER`` (pickle by default; override ``serialize``/``deserialize``)."""

    __slots__ = ()

    SERIALIZER: Any = pickle
    CONTENT_TYPE = "application/python-pickle"

    def serialize(self, data: Any) -> bytes:
        return self.SERIALIZER.dumps(data)

    def deserialize(self, data: bytes) -> Any:
        return self.SERIALIZER.loads(data)


__all__ = ("Base", "CallbackType", "Method", "Proxy")
