"""Checks of configuration values, written once: plain functions for code that checks an
argument, and the same rules as attrs validators for frozen option classes.

Every failure is a :class:`~genesys_gateway.errors.ConfigurationError` whose ``option``
names the offending option, so that settings loaders can name the setting instead.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import attrs

from .errors import ConfigurationError

__all__ = [
    "check_seconds",
    "seconds",
    "is_callable",
    "check_positive",
    "check_positive_int",
    "check_non_negative_int",
    "check_optional_positive",
    "check_bool",
    "check_non_empty_str",
    "positive",
    "positive_int",
    "non_negative_int",
    "optional_positive",
    "boolean",
    "non_empty_str",
]


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _as_float(value: Any) -> float | None:
    """``value`` as a float, or ``None`` when it is not a number a float can hold (an int
    too large for one would raise ``OverflowError`` in ``math``)."""
    if not _is_number(value):
        return None
    try:
        return float(value)
    except OverflowError:
        return None


def check_positive(option: str, value: Any) -> float:
    """``value`` as a float when it is a finite number > 0; else ``ConfigurationError``."""
    number = _as_float(value)
    if number is None or not math.isfinite(number) or not number > 0:
        raise ConfigurationError(f"{option} must be a positive number, got {_short(value)}",
                                 option=option)
    return number


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:59] + "…"


def check_positive_int(option: str, value: Any) -> int:
    """``value`` when it is an ``int`` > 0 (``bool`` is not); else ``ConfigurationError``."""
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ConfigurationError(f"{option} must be a positive integer, got {value!r}", option=option)
    return value


def check_non_negative_int(option: str, value: Any) -> int:
    """``value`` when it is an ``int`` >= 0 (``bool`` is not); else ``ConfigurationError``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigurationError(f"{option} must be an integer >= 0, got {value!r}", option=option)
    return value


def check_optional_positive(option: str, value: Any) -> float | None:
    """``None``, or a finite number > 0 (as a float)."""
    return None if value is None else check_positive(option, value)


def check_bool(option: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ConfigurationError(f"{option} must be True or False, got {value!r}", option=option)
    return value


def check_non_empty_str(option: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigurationError(f"{option} must be a non-empty string, got {value!r}", option=option)
    return value


# attrs validators: the same rules, named after the field they check.

def positive(_instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    check_positive(attribute.name, value)


def positive_int(_instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    check_positive_int(attribute.name, value)


def non_negative_int(_instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    check_non_negative_int(attribute.name, value)


def optional_positive(_instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    check_optional_positive(attribute.name, value)


def boolean(_instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    check_bool(attribute.name, value)


def non_empty_str(_instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    check_non_empty_str(attribute.name, value)


def check_seconds(
    name: str, value: object, *, positive: bool = False, allow_infinity: bool = False
) -> None:
    """Raise :class:`ConfigurationError` naming ``name`` unless ``value`` is a number of
    seconds: an ``int`` or ``float`` (not a bool), not NaN, finite unless ``allow_infinity``,
    and ``> 0`` if ``positive`` else ``>= 0``. The one check behind every store's timing
    options."""
    number = _as_float(value)
    if number is None or math.isnan(number):
        raise ConfigurationError(f"{name} must be a number of seconds, got {_short(value)}",
                                 option=name)
    if math.isinf(number) and not allow_infinity:
        raise ConfigurationError(f"{name} must be a finite number of seconds, got {value!r}",
                                 option=name)
    if positive and number <= 0:
        raise ConfigurationError(f"{name} must be > 0 seconds, got {value!r}", option=name)
    if number < 0:
        raise ConfigurationError(f"{name} must be >= 0 seconds, got {value!r}", option=name)


def seconds(
    *, positive: bool = False, allow_infinity: bool = False
) -> Callable[[Any, attrs.Attribute[Any], Any], None]:
    """An attrs validator: :func:`check_seconds` under the field's name."""

    def validate(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        check_seconds(attribute.name, value, positive=positive, allow_infinity=allow_infinity)

    return validate


def is_callable(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not callable(value):
        raise ConfigurationError(f"{attribute.name} must be callable, got {value!r}",
                                 option=attribute.name)
