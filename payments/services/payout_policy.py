"""Who must approve a payout: the one place the approval policy is read from.

The policy in force is the newest PayoutPolicyVersion, or, before an admin ever changed it,
settings (PAYOUT_APPROVAL_TIERS, PAYOUT_APPROVAL_TTL_HOURS). Admins change it in the app
(/payouts/policy/): `payout_policy_propose` asks for a second admin's approval through the
general maker-checker (payments/services/approvals.py, action "payout.policy", permission
backoffice.manage_settings), and only that approval writes the new version. A payout keeps the
number of approvers its tier asked for when it was submitted; a change applies to payouts
submitted after it.

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
from django.db import IntegrityError, transaction
from django.utils import timezone

from backoffice import audit

from ..models import Approval, PayoutPolicyVersion
from . import approvals

ACTION = "payout.policy"
PERMISSION = "backoffice.manage_settings"
MAX_TTL_HOURS = 24 * 14


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


def parse_tiers(
    text: str,
    *,
    name: str = "PAYOUT_APPROVAL_TIERS",
    error: type[Exception] = ImproperlyConfigured,
) -> tuple[Tier, ...]:
    """ "10000.00:1,*:2" -> tiers; `error` naming what is wrong (in `name`: the setting, or
    the form's field)."""
    tiers: list[Tier] = []
    entries = [e.strip() for e in text.split(",") if e.strip()]
    if not entries:
        raise error(f"{name} is empty; e.g. 10000.00:1,*:2")
    for i, entry in enumerate(entries):
        limit, sep, count = entry.partition(":")
        try:
            approvers = int(count)
        except ValueError:
            approvers = 0
        if not sep or approvers < 1:
            raise error(
                f"{name}: {entry!r} is not <amount>:<approvers> with at least one "
                "approver; e.g. 10000.00:1,*:2"
            )
        if limit.strip() == "*":
            if i != len(entries) - 1:
                raise error(f"{name}: '*' must be the last tier")
            tiers.append(Tier(None, approvers))
            continue
        try:
            up_to = Decimal(limit.strip())
            if not up_to.is_finite() or up_to <= 0:
                raise InvalidOperation
        except InvalidOperation:
            raise error(f"{name}: {limit!r} is not an amount above zero") from None
        if tiers and tiers[-1].up_to is not None and up_to <= tiers[-1].up_to:
            raise error(f"{name}: amounts must rise")
        tiers.append(Tier(up_to, approvers))
    if tiers[-1].up_to is not None:
        raise error(f"{name} must end with '*:<approvers>' (everything above the last amount)")
    return tuple(tiers)


def format_tiers(tiers: tuple[Tier, ...]) -> str:
    """The tiers written as parse_tiers reads them: "10000.00:1,*:2"."""
    return ",".join(f"{'*' if t.up_to is None else t.up_to}:{t.approvers}" for t in tiers)


def payout_policy_version() -> PayoutPolicyVersion | None:
    """The version in force, None while settings hold the policy."""
    return PayoutPolicyVersion.objects.select_related("approval").first()


def payout_policy() -> PayoutPolicy:
    """The approval policy in force: the newest approved version, else settings."""
    version = payout_policy_version()
    if version is not None:
        return PayoutPolicy(tiers=parse_tiers(version.tiers), ttl_hours=float(version.ttl_hours))
    return PayoutPolicy(
        tiers=parse_tiers(settings.PAYOUT_APPROVAL_TIERS),
        ttl_hours=float(settings.PAYOUT_APPROVAL_TTL_HOURS),
    )


class PolicyError(Exception):
    """A policy change that cannot be asked for; the message says why, for the member."""


def payout_policy_pending() -> Approval | None:
    return (
        Approval.objects.filter(action=ACTION, state=Approval.State.PENDING)
        .select_related("requested_by")
        .first()
    )


def payout_policy_propose(*, tiers: tuple[Tier, ...], ttl_hours: int, by) -> Approval:
    """Ask a second admin to approve a new policy. One change waits at a time: a second would
    be approved against a policy that the first may already have replaced."""
    if not 1 <= ttl_hours <= MAX_TTL_HOURS:
        raise PolicyError(f"Approvals must expire after 1 to {MAX_TTL_HOURS} hours.")
    current = payout_policy()
    new = PayoutPolicy(tiers=tiers, ttl_hours=float(ttl_hours))
    if (new.tiers, new.ttl_hours) == (current.tiers, current.ttl_hours):
        raise PolicyError("This is the policy in force already: nothing to change.")
    try:
        # The database keeps it to one pending change whoever asks at the same moment
        # (Approval's constraint approval_one_pending_policy_change).
        with transaction.atomic():
            return approvals.approval_request(
                action=ACTION,
                payload={
                    "tiers": format_tiers(tiers),
                    "ttl_hours": ttl_hours,
                    "replaces": {
                        "tiers": format_tiers(current.tiers),
                        "ttl_hours": int(current.ttl_hours),
                    },
                },
                summary=(
                    f"Payout approval policy: {'; '.join(new.describe())}; approvals expire "
                    f"after {ttl_hours} h"
                ),
                permission=PERMISSION,
                requested_by=by,
            )
    except IntegrityError:
        pending = payout_policy_pending()
        who = pending.requested_by.get_username() if pending else "another admin"
        raise PolicyError(
            f"A change asked for by {who} is waiting for a second admin: it must be approved "
            "or declined first."
        ) from None


def _approved(approval: Approval) -> None:
    payload = approval.payload
    before = payout_policy()
    version = PayoutPolicyVersion.objects.create(
        tiers=format_tiers(parse_tiers(payload["tiers"])),
        ttl_hours=payload["ttl_hours"],
        approval=approval,
        in_force_from=approval.decided_at or timezone.now(),
    )
    audit.record(
        "payout.policy.changed",
        actor=approval.decided_by,
        obj=version,
        before={"tiers": format_tiers(before.tiers), "ttl_hours": int(before.ttl_hours)},
        after={"tiers": version.tiers, "ttl_hours": version.ttl_hours},
        details={
            "approval": str(approval.code),
            "proposed_by": approval.requested_by.get_username(),
        },
    )


def _closed(approval: Approval) -> None:
    """Declined or expired: the policy stays as it is (the approval's own events say why)."""


approvals.register_action(ACTION, on_approve=_approved, on_close=_closed)
