"""Run-time configuration: defaults from settings, overrides stored in the sandbox database.

Stored in the database so that the server threads and the clock threads see one value.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings

from .models import Setting

CONFIG_KEY = "config"
FAULTS_KEY = "faults"

# Share of GraphQL requests answered with each fault (our test tooling, not FlashFX's).
FAULT_MODES = (
    "http_500",
    "html_502",
    "rate_limit_429",
    "graphql_error",
    "slow",
    "commit_then_drop",
)
FAULT_DEFAULTS: dict[str, Any] = {
    **dict.fromkeys(FAULT_MODES, 0.0),
    "retry_after_seconds": 59,  # the documented example (docs/flashfx.md §1.4)
    "slow_seconds": 35.0,  # longer than the client's default read timeout (30 s)
    "operations": [],  # only requests touching these root fields; empty = every request
    "limit": None,  # stop injecting after this many faults; None = no limit
}


class ConfigError(ValueError):
    """A control request asked for a setting that does not exist or has the wrong type."""


def get_config() -> dict[str, Any]:
    stored = Setting.objects.filter(key=CONFIG_KEY).values_list("value", flat=True).first() or {}
    return {**settings.SANDBOX_DEFAULTS, **stored}


def update_config(changes: dict[str, Any]) -> dict[str, Any]:
    defaults = settings.SANDBOX_DEFAULTS
    unknown = sorted(set(changes) - set(defaults))
    if unknown:
        raise ConfigError(f"unknown setting(s): {', '.join(unknown)}")
    for name, value in changes.items():
        expected = type(defaults[name])
        if expected is float and isinstance(value, int) and not isinstance(value, bool):
            continue
        if not isinstance(value, expected):
            raise ConfigError(f"{name} must be a {expected.__name__}")
    stored = Setting.objects.filter(key=CONFIG_KEY).values_list("value", flat=True).first() or {}
    Setting.objects.update_or_create(key=CONFIG_KEY, defaults={"value": {**stored, **changes}})
    return get_config()


def get_faults() -> dict[str, Any]:
    stored = Setting.objects.filter(key=FAULTS_KEY).values_list("value", flat=True).first() or {}
    return {**FAULT_DEFAULTS, **stored}


def set_faults(changes: dict[str, Any]) -> dict[str, Any]:
    """Replace the fault mix; modes not named go back to 0."""
    unknown = sorted(set(changes) - set(FAULT_DEFAULTS))
    if unknown:
        raise ConfigError(f"unknown fault setting(s): {', '.join(unknown)}")
    faults = {**FAULT_DEFAULTS, **changes}
    for mode in FAULT_MODES:
        share = faults[mode]
        if isinstance(share, bool) or not isinstance(share, int | float) or not 0 <= share <= 1:
            raise ConfigError(f"{mode} must be a share between 0 and 1")
    if sum(faults[m] for m in FAULT_MODES) > 1:
        raise ConfigError("the shares of all fault modes add up to more than 1")
    if not isinstance(faults["operations"], list) or not all(
        isinstance(o, str) for o in faults["operations"]
    ):
        raise ConfigError("operations must be a list of root field names")
    if faults["limit"] is not None and (
        not isinstance(faults["limit"], int) or faults["limit"] < 0
    ):
        raise ConfigError("limit must be a whole number or null")
    for name in ("retry_after_seconds", "slow_seconds"):
        if (
            isinstance(faults[name], bool)
            or not isinstance(faults[name], int | float)
            or faults[name] < 0
        ):
            raise ConfigError(f"{name} must be a number >= 0")
    Setting.objects.update_or_create(key=FAULTS_KEY, defaults={"value": faults})
    return faults


def reset() -> None:
    Setting.objects.filter(key__in=[CONFIG_KEY, FAULTS_KEY]).delete()
