"""Roles: Django groups with permissions, named after FlashFX's member access levels (docs/flashfx.md §3.12).

FlashFX gives its own members `login`, `transact`, `approve`, `compliance` and `admin` access;
our roles mirror them for the people using this back-office:

- viewer (FlashFX `login`): reads every page;
- operator (`transact`): also rejects deposits, starts payouts and payments, manages
  recipients, senders and sub-clients at FlashFX, exports (with full account numbers);
- approver (`approve`): also approves payouts and payments someone else started, exports;
- compliance (`compliance`): also reads the audit trail and raw webhook bodies, exports (with
  full account numbers); approvers' exports mask account numbers (payments.view_account_number);
- admin (`admin`): staff accounts and roles, settings and the approval policy, the audit trail
  and the Django admin. Not money: segregation of duties keeps admins out of payouts.

ensure_roles() makes the groups hold exactly these permissions; it runs after every migrate.
Views check permissions (never role names), so a permission moved here moves everywhere.
"""

from __future__ import annotations

from django.contrib.auth.models import Group, Permission

VIEWER, OPERATOR, APPROVER, COMPLIANCE, ADMIN = (
    "viewer",
    "operator",
    "approver",
    "compliance",
    "admin",
)
ROLES = (VIEWER, OPERATOR, APPROVER, COMPLIANCE, ADMIN)

READ = (
    "payments.view_deposit",
    "payments.view_withdrawal",
    "payments.view_payment",
    "payments.view_expectedpayment",
    "payments.view_depositrefund",
    "payments.view_approval",
    "mirrors.view_balancesnapshot",
    "mirrors.view_syncrun",
    "mirrors.view_driftreport",
    "mirrors.view_driftitem",
    "mirrors.view_balancecheck",
    "mirrors.view_statementline",
    "parties.view_sender",
    "parties.view_recipient",
    "parties.view_subclient",
    "webhooks.view_inboundevent",
)
AUDIT = ("backoffice.view_auditevent",)
EXPORT = ("backoffice.export_data",)
# Reconciliation now and a day's statement both only read FlashFX; settling drift changes the
# mirror (backoffice/reconciliation.py).
RUN_RECONCILIATION = ("mirrors.run_reconciliation",)
RESOLVE_DRIFT = ("mirrors.resolve_driftitem",)

PERMISSIONS: dict[str, tuple[str, ...]] = {
    VIEWER: READ,
    OPERATOR: READ
    + EXPORT
    + RUN_RECONCILIATION
    + (
        "payments.review_deposit",
        "payments.add_expectedpayment",
        "payments.delete_expectedpayment",  # only while unmatched (services/matching.py)
        "payments.reject_deposit",
        "payments.view_account_number",  # unmasked in exports: they make payouts to them
        "payments.create_payout",
        "payments.create_payment",
        "parties.manage_recipient",
        "parties.manage_sender",
        "parties.create_subclient",
    ),
    APPROVER: READ
    + EXPORT
    + RUN_RECONCILIATION
    + ("payments.approve_refund", "payments.approve_payout", "payments.approve_payment"),
    # Raw webhook bodies and headers hold payers' names and account numbers: compliance
    # investigates with them, admins need them to judge a replay; the others see the outcome.
    # Compliance and admins settle drift (re-apply FlashFX's version or mark it resolved).
    COMPLIANCE: READ
    + EXPORT
    + AUDIT
    + RUN_RECONCILIATION
    + RESOLVE_DRIFT
    + ("payments.view_account_number", "webhooks.view_raw_body"),
    # Admins export what they read (account numbers masked): issue 13's "staff and admins need
    # the state of their money ... in their spreadsheets". Money actions stay with the others.
    ADMIN: READ
    + EXPORT
    + AUDIT
    + RUN_RECONCILIATION
    + RESOLVE_DRIFT
    + (
        "backoffice.manage_settings",
        "backoffice.view_staffsession",
        "auth.view_user",
        "auth.add_user",
        "auth.change_user",
        "auth.view_group",
        "webhooks.change_inboundevent",  # replay, in the admin and on the event pages
        "webhooks.view_raw_body",
        "webhooks.view_quarantinetally",
    ),
}


def _permission(dotted: str) -> Permission:
    app_label, codename = dotted.split(".", 1)
    return Permission.objects.get(content_type__app_label=app_label, codename=codename)


def ensure_roles() -> None:
    """Create the role groups and give each exactly its permissions (idempotent)."""
    for role, dotted in PERMISSIONS.items():
        group, _ = Group.objects.get_or_create(name=role)
        group.permissions.set([_permission(p) for p in dotted])


def roles_of(user) -> list[str]:
    if not user.is_authenticated:
        return []
    return sorted(g.name for g in user.groups.all() if g.name in ROLES)


def is_admin(user) -> bool:
    return user.is_active and (user.is_superuser or ADMIN in roles_of(user))
