"""Type names, kinds and the name -> class registry used to decode received envelopes."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, overload

from mmate_fast.contracts._kinds import MessageKind
from mmate_fast.contracts._plan import _PLANS, plan_for
from mmate_fast.errors import ContractError

T = TypeVar("T", bound=type)


def message_type(msg_or_cls: Any) -> str:
    """The envelope ``type`` of a message or class: the name given at registration, else the
    class attribute ``__mmate_type__``, else the class name. A GenericMessage gives its ``type``."""
    if isinstance(msg_or_cls, type):
        return (_PLANS.get(msg_or_cls) or plan_for(msg_or_cls)).type_name
    p = _PLANS.get(msg_or_cls.__class__) or plan_for(msg_or_cls.__class__)
    return msg_or_cls.type if p.is_generic else p.type_name


def kind_of(msg_or_cls: Any) -> MessageKind:
    """The kind of a message or class (class attribute ``__mmate_kind__`` of the base classes, or
    ``kind=`` at registration); a GenericMessage gives its ``x-message-kind`` header when valid."""
    if isinstance(msg_or_cls, type):
        return (_PLANS.get(msg_or_cls) or plan_for(msg_or_cls)).kind
    p = _PLANS.get(msg_or_cls.__class__) or plan_for(msg_or_cls.__class__)
    if p.is_generic:
        k = msg_or_cls.headers.get("x-message-kind") if isinstance(msg_or_cls.headers, dict) else None
        if isinstance(k, str) and k in MessageKind._value2member_map_:
            return MessageKind(k)
    return p.kind


def reply_type_of(msg_or_cls: Any) -> type | None:
    """The reply class registered for a request class (``register(GetOrder, reply=OrderReply)``),
    or None: what a failing handler for it answers with (see ``mmate_fast.bridge``)."""
    cls = msg_or_cls if isinstance(msg_or_cls, type) else msg_or_cls.__class__
    return (_PLANS.get(cls) or plan_for(cls)).reply_type


class TypeRegistry:
    """Envelope type name -> message class. Re-registering a name replaces the old class silently
    (redefining a class in a notebook or test just works)."""

    def __init__(self) -> None:
        self._by_name: dict[str, type] = {}

    def register(self, cls: T, name: str | None = None, *, kind: MessageKind | str | None = None,
                 reply: type | None = None) -> T:
        """Register ``cls`` (dataclass, Message subclass or pydantic model) under ``name`` (default:
        ``message_type(cls)``). An explicit ``name``/``kind`` also becomes the class's type name /
        kind for publishing. ``reply``: the reply class a request of this type is answered with
        (a failing handler then answers with that type, ``success: false`` and the error fields,
        which a Go requester can read; see ``mmate_fast.bridge.reply_with_error``)."""
        if not isinstance(cls, type):
            raise ContractError(f"register() needs a class, got {cls!r}")
        p = plan_for(cls)
        if name is not None:
            if not isinstance(name, str) or not name:
                raise ContractError(f"register(): type name must be a non-empty string, got {name!r}")
            if self._by_name.get(p.type_name) is cls and p.type_name != name:
                del self._by_name[p.type_name]  # renamed: drop the automatic name
            p.type_name = name
        if kind is not None:
            try:
                p.kind = MessageKind(kind)
            except ValueError:
                raise ContractError(f"register(): unknown kind {kind!r}") from None
        if reply is not None:
            if not isinstance(reply, type) or plan_for(reply).kind is not MessageKind.REPLY:
                raise ContractError("register(): reply must be a reply class (a Reply subclass, or one "
                                    f"registered with kind='reply'), got {reply!r}")
            p.reply_type = reply
        self._by_name[p.type_name] = cls
        return cls

    def resolve(self, name: str) -> type | None:
        """The class registered under ``name`` (exact, case-sensitive like Go), or None."""
        return self._by_name.get(name)

    def unregister(self, name: str) -> None:
        """Forget ``name`` (no error when absent)."""
        self._by_name.pop(name, None)

    def names(self) -> list[str]:
        """Registered type names, sorted."""
        return sorted(self._by_name)

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def __len__(self) -> int:
        return len(self._by_name)

    def __repr__(self) -> str:
        return f"TypeRegistry({len(self._by_name)} types)"


default_registry = TypeRegistry()


@overload
def register(cls: T, *, name: str | None = None, kind: MessageKind | str | None = None,
             reply: type | None = None) -> T: ...
@overload
def register(cls: None = None, *, name: str | None = None, kind: MessageKind | str | None = None,
             reply: type | None = None) -> Callable[[T], T]: ...


def register(cls: Any = None, *, name: str | None = None, kind: MessageKind | str | None = None,
             reply: type | None = None) -> Any:
    """Register a class in the default registry; usable as ``register(Cls)``, ``@register`` or
    ``@register(name="OrderCreated", kind="event")``; ``reply=`` names a request's reply class."""
    if cls is None:
        def deco(c: T) -> T:
            return default_registry.register(c, name, kind=kind, reply=reply)
        return deco
    return default_registry.register(cls, name, kind=kind, reply=reply)


__all__ = ["TypeRegistry", "default_registry", "kind_of", "message_type", "register", "reply_type_of"]
