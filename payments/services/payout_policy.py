"""Who must approve a payout: the one place the approval policy is read from.

Today the policy is in settings (PAYOUT_APPROVAL_TIERS, PAYOUT_APPROVAL_TTL_HOURS); editing it
in the app with a second admin's approval is a later step, which moves `payout_policy()` to the
database and leaves its callers alone.

PAYOUT_APPROVAL_TIERS is a comma-separated list of `<up to amount>:<approvers>`, amounts in
AUD and rising, ending with `*:<approvers>` for everything above the last amount, e.g.
"10000.00:1,*:2" (up to 10,000.00 one approver, above that two). Approvers are always members
other than the maker, and distinct from each other.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


@dataclass(frozen=True)
class Tier:
    up_to: Decimal | None  # None: any amount above the tiers before it
    approvers: int


@dataclass(frozen=True)
class PayoutPolicy:
    tiers: tuple[Tier, ...]
    ttl_hours: float
    currency: str = "AUD"  # payouts are local AUD payouts (docs/flashfx.md §3.3.1)

    def approvers_required(self, amount: Decimal) -> int:
        for tier in self.tiers:
            if tier.up_to is None or amount <= tier.up_to:
                return tier.approvers
        raise AssertionError("the last tier always matches")  # parse_tiers ends with "*"

    def describe(self) -> list[str]:
        """The tiers in words, for the pages."""
        words, below = [], None
        for tier in self.tiers:
            who = "one approver" if tier.approvers == 1 else f"{tier.approvers} approvers"
            if tier.up_to is None:
                words.append(f"above {self.currency} {below}: {who}" if below else f"any: {who}")
            else:
                words.append(f"up to {self.currency} {tier.up_to}: {who}")
                below = tier.up_to
        return words


def parse_tiers(text: str) -> tuple[Tier, ...]:
    """ "10000.00:1,*:2" -> tiers; ImproperlyConfigured naming what is wrong."""
    tiers: list[Tier] = []
    entries = [e.strip() for e in text.split(",") if e.strip()]
    if not entries:
        raise ImproperlyConfigured("PAYOUT_APPROVAL_TIERS is empty; e.g. 10000.00:1,*:2")
    for i, entry in enumerate(entries):
        limit, sep, count = entry.partition(":")
        try:
            approvers = int(count)
        except ValueError:
            approvers = 0
        if not sep or approvers < 1:
            raise ImproperlyConfigured(
                f"PAYOUT_APPROVAL_TIERS: {entry!r} is not <amount>:<approvers> with at least one "
                "approver; e.g. 10000.00:1,*:2"
            )
        if limit.strip() == "*":
            if i != len(entries) - 1:
                raise ImproperlyConfigured("PAYOUT_APPROVAL_TIERS: '*' must be the last tier")
            tiers.append(Tier(None, approvers))
            continue
        try:
            up_to = Decimal(limit.strip())
            if not up_to.is_finite() or up_to <= 0:
                raise InvalidOperation
        except InvalidOperation:
            raise ImproperlyConfigured(
                f"PAYOUT_APPROVAL_TIERS: {limit!r} is not an amount above zero"
            ) from None
        if tiers and tiers[-1].up_to is not None and up_to <= tiers[-1].up_to:
            raise ImproperlyConfigured("PAYOUT_APPROVAL_TIERS: amounts must rise")
        tiers.append(Tier(up_to, approvers))
    if tiers[-1].up_to is not None:
        raise ImproperlyConfigured(
            "PAYOUT_APPROVAL_TIERS must end with '*:<approvers>' (everything above the last amount)"
        )
    return tuple(tiers)


def payout_policy() -> PayoutPolicy:
    """The approval policy in force (settings today; the database later)."""
    return PayoutPolicy(
        tiers=parse_tiers(settings.PAYOUT_APPROVAL_TIERS),
        ttl_hours=float(settings.PAYOUT_APPROVAL_TTL_HOURS),
    )
