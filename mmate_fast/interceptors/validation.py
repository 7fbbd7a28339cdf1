"""Message validation on publish and/or consume.

A message is checked by, in order:

1. the validator registered for its type in ``validators`` (a mapping class or wire type name ->
   callable), else the ``validator`` callable given for every type;
2. its own ``validate()`` method when it has one (dataclass messages), or, for pydantic models, a
   re-validation of its current field values (catches invalid assignments after construction).

A validator returns None/True when the message is fine; it fails by returning False or a string
(the reason text) or by raising. Every failure becomes :class:`~mmate_fast.errors.ValidationError`
(reason ``validation-failed``): the publish raises it; on consume the message is rejected /
dead-lettered with that reason. Validators may be ``async``.
"""
from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any

from mmate_fast.errors import ValidationError
from mmate_fast.interceptors._types import TypeMap, type_name
from mmate_fast.messaging.pipeline import ConsumeContext, Interceptor, PublishContext

#: ``fn(message)`` -> None/True (valid), False or a reason string (invalid); may raise; may be async
Validator = Callable[[Any], Any]


class ValidationInterceptor(Interceptor):
    """Validate messages before publishing (``on_publish``) and before handling (``on_consume``)."""

    def __init__(self, validator: Validator | None = None, *,
                 validators: Mapping[Any, Validator] | None = None,
                 use_model: bool = True, on_publish: bool = True, on_consume: bool = True) -> None:
        self._default = validator
        self._by_type: TypeMap[Validator] = TypeMap(validators)
        self.use_model = use_model
        self.on_publish = on_publish
        self.on_consume = on_consume

    def __repr__(self) -> str:
        return (f"<ValidationInterceptor publish={self.on_publish} consume={self.on_consume} "
                f"model={self.use_model}>")

    async def before_publish(self, ctx: PublishContext) -> bool | None:
        if self.on_publish:
            await self.validate(ctx.message)
        return None

    async def before_consume(self, ctx: ConsumeContext) -> bool | None:
        if self.on_consume:
            await self.validate(ctx.message, ctx.envelope.type)
        return None

    async def validate(self, message: Any, wire_type: str | None = None) -> None:
        """Raise ValidationError when ``message`` is not valid."""
        name = wire_type or type_name(message)
        fn = self._by_type.get(message, name, self._default) if self._by_type else self._default
        if fn is not None:
            await _run(fn, message, name)
        if self.use_model:
            await _model_check(message, name)


async def _run(fn: Validator, message: Any, name: str) -> None:
    try:
        result = fn(message)
        if inspect.isawaitable(result):
            result = await result
    except ValidationError:
        raise
    except Exception as exc:
        raise ValidationError(f"{name} is not valid: {type(exc).__name__}: {exc}") from exc
    if result is False:
        raise ValidationError(f"{name} is not valid")
    if isinstance(result, str) and result:
        raise ValidationError(f"{name} is not valid: {result}")


async def _model_check(message: Any, name: str) -> None:
    cls = type(message)
    if hasattr(cls, "model_validate") and hasattr(message, "model_dump"):
        # pydantic: re-validate the current values (BaseModel.validate is a deprecated classmethod)
        await _run(lambda m: cls.model_validate(m.model_dump(by_alias=True)), message, name)
        return
    method = getattr(message, "validate", None)
    if callable(method):
        await _run(lambda _m: method(), message, name)


__all__ = ["ValidationInterceptor", "Validator"]
