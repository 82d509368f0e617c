from __future__ import annotations

from django.http import HttpRequest
from django.urls import reverse

from .roles import ADMIN, roles_of

# (label, URL name, permission needed; None: every signed-in member)
NAVIGATION = (
    ("Dashboard", "dashboard", None),
    ("Deposits", "payments:deposits", "payments.view_deposit"),
    ("Expected", "payments:expected", "payments.view_expectedpayment"),
    ("Payouts", "payments:payouts", "payments.view_withdrawal"),
    ("Payments", "payments:payments", "payments.view_payment"),
    ("Approvals", "payments:approvals", "payments.view_approval"),
    ("Parties", "parties:parties", "parties.view_sender"),
    ("Webhooks", "webhooks:events", "webhooks.view_inboundevent"),
    ("Reconciliation", "reconciliation", "mirrors.view_driftreport"),
    ("Exports", "payments:exports", "backoffice.export_data"),
    ("Audit", "audit-trail", "backoffice.view_auditevent"),
)


def staff(request: HttpRequest) -> dict:
    """The navigation this member may use (the views check the same permissions)."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated or not user.is_verified():
        return {"navigation": [], "staff_roles": []}
    path = request.path_info
    items = []
    for label, name, permission in NAVIGATION:
        if permission is None or user.has_perm(permission):
            items.append({"label": label, "url": reverse(name), "current": False})
    # The current item: the longest URL the path is under (/deposits/expected/ is Expected's).
    under = [
        i for i in items if (path == i["url"] if i["url"] == "/" else path.startswith(i["url"]))
    ]
    if under:
        max(under, key=lambda i: len(i["url"]))["current"] = True
    roles = roles_of(user)  # one query, for the Admin item and the header
    if user.is_active and (user.is_superuser or ADMIN in roles):
        url = reverse("admin:index")
        items.append({"label": "Admin", "url": url, "current": path.startswith(url)})
    return {"navigation": items, "staff_roles": roles}
