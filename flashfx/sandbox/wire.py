"""How values look on the wire: timestamps, amounts and JSON bodies (docs/flashfx.md §2.4)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation

import simplejson

CENT = Decimal("0.01")


def timestamp(value: datetime | None) -> str | None:
    """UTC with milliseconds and Z, e.g. 2026-03-03T01:25:11.984Z."""
    if value is None:
        return None
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_timestamp(value: str) -> datetime:
    """Any ISO-8601 with an offset; a naive one is refused rather than guessed."""
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        raise ValueError("needs a UTC offset or Z")
    return parsed.astimezone(UTC)


def to_decimal(value: object) -> Decimal:
    """A JSON number as the exact decimal it was written as (floats via their shortest repr)."""
    if isinstance(value, bool):
        raise ValueError("not a number")
    if isinstance(value, float):
        value = repr(value)
    try:
        result = Decimal(value)  # type: ignore[arg-type]
    except (InvalidOperation, TypeError):
        raise ValueError("not a number") from None
    if not result.is_finite():
        raise ValueError("not a finite number")
    return result


def json_number(value: Decimal) -> Decimal:
    """250.00 -> 250 and 411.10 -> 411.1, as FlashFX's JavaScript would print them."""
    if value == value.to_integral_value():
        return value.quantize(Decimal(1))
    return value.normalize()


def dumps(payload: object) -> bytes:
    """Compact JSON with Decimals written as exact numbers."""
    return simplejson.dumps(
        _numbers(payload), use_decimal=True, separators=(",", ":"), ensure_ascii=False
    ).encode("utf-8")


def _numbers(value: object) -> object:
    if isinstance(value, Decimal):
        return json_number(value)
    if isinstance(value, dict):
        return {k: _numbers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_numbers(v) for v in value]
    return value
