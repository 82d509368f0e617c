"""Every URL of the site, asked for by everyone: nothing is reachable by accident.

The walk covers every pattern of the root URLconf (our pages, the social sign-in, the Django
admin with one set of URLs per registered model, the webhook receiver), fills its converters
with sample values, GETs it as each kind of visitor and compares the status with the table
below. A URL that nobody decided about fails the test by name: add it to the table.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from urllib.parse import quote

import pytest
from django.apps import apps
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from django.urls.resolvers import RegexPattern
from staff import make_staff, sign_in

from backoffice import roles
from backoffice.roles import PERMISSIONS

pytestmark = pytest.mark.django_db

ANONYMOUS, UNVERIFIED, NOBODY = "anonymous", "unverified", "no role"
VERIFIED = (*roles.ROLES, NOBODY)  # signed in and past the OTP step
EVERYONE = (ANONYMOUS, UNVERIFIED, *VERIFIED)

LOGIN, OTP = "/accounts/login/?next=", "/accounts/otp/?next="


# --- The walk -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Route:
    route: str  # the full pattern, e.g. "admin/payments/deposit/<path:object_id>/change/"
    name: str | None  # namespaced, e.g. "admin:payments_deposit_change"
    regex: bool


def walk(resolver=None, prefix: str = "", namespace: str = "") -> list[Route]:
    resolver = resolver or get_resolver()
    found = []
    for pattern in resolver.url_patterns:
        if isinstance(pattern, URLResolver):
            inner = namespace + (f"{pattern.namespace}:" if pattern.namespace else "")
            found += walk(pattern, prefix + str(pattern.pattern), inner)
        else:
            assert isinstance(pattern, URLPattern)
            found.append(
                Route(
                    prefix + str(pattern.pattern),
                    f"{namespace}{pattern.name}" if pattern.name else None,
                    regex=isinstance(pattern.pattern, RegexPattern),
                )
            )
    return found


ADMIN_MODEL = re.compile(r"^admin/(?P<app>\w+)/(?P<model>\w+)/(?P<rest>.*)$")
CONVERTER = re.compile(r"<(?:(?P<conv>\w+):)?(?P<name>\w+)>")
APP_LIST = re.compile(r"\(\?P<app_label>(?P<labels>[\w|]+)\)")


@dataclass(frozen=True)
class Target:
    route: Route
    path: str
    model: str | None = None  # "app_label.model" for the admin's per-model URLs
    view: str | None = None  # changelist, add, change, history, delete, redirect, password
    exists: bool = True  # the object named in the path exists


def model_view(rest: str) -> str:
    return {
        "": "changelist",
        "add/": "add",
        "<path:object_id>/history/": "history",
        "<path:object_id>/delete/": "delete",
        "<path:object_id>/change/": "change",
        "<path:object_id>/": "redirect",
        "<id>/password/": "password",
        "<int:pk>/config/": "device",  # django-otp: an authenticator's settings
        "<int:pk>/qrcode/": "device",  # and its QR code (the secret!)
    }.get(rest, f"unknown: {rest}")


def targets(routes: list[Route]) -> list[Target]:
    """Concrete paths: converters filled with real objects' ids where there are some."""
    user_type = ContentType.objects.get_for_model(get_user_model())
    some_user = get_user_model().objects.order_by("pk").first()
    registered = {(m._meta.app_label, m._meta.model_name) for m in admin.site._registry}
    found = []
    for route in routes:
        if route.regex:
            if match := APP_LIST.search(route.route):  # one path per app in the admin
                for label in match["labels"].split("|"):
                    found.append(Target(route, f"/admin/{label}/", model=label, view="app_list"))
            elif route.route == "admin/(?P<url>.*)$":  # the admin's catch-all
                found.append(Target(route, "/admin/no-such-page/", view="catch_all"))
            else:
                pytest.fail(f"no sample path for the regex pattern {route.route!r}")
            continue
        match = ADMIN_MODEL.match(route.route)
        if match and (match["app"], match["model"]) in registered:
            label = f"{match['app']}.{match['model']}"
            model = apps.get_model(label)
            row = model._default_manager.order_by("pk").first()
            path = match["rest"].replace("<path:object_id>", str(row.pk if row else 999999))
            path = path.replace("<id>", str(row.pk if row else 999999))
            path = path.replace("<int:pk>", str(row.pk if row else 999999))
            found.append(
                Target(
                    route,
                    f"/admin/{match['app']}/{match['model']}/{path}",
                    model=label,
                    view=model_view(match["rest"]),
                    exists=row is not None,
                )
            )
            continue
        samples = {
            "backend": "google-oauth2",
            "association_id": "1",
            "content_type_id": str(user_type.pk),
            "object_id": str(some_user.pk if some_user else 1),
            "flashfx_id": "no-such-deposit",
            "action": "accept",
            "proposal_id": "999999",
            "decision": "approve",
            "code": "00000000-0000-4000-8000-000000000000",
            "pk": "999999",
            "list_name": "deposits",
        }

        def fill(m: re.Match, route=route, samples=samples) -> str:
            if m["name"] not in samples:
                pytest.fail(f"no sample value for <{m['name']}> in {route.route!r}")
            return samples[m["name"]]

        found.append(Target(route, "/" + CONVERTER.sub(fill, route.route)))
    return found


# --- What each visitor gets ---------------------------------------------------------------------


@dataclass(frozen=True)
class Expect:
    status: int
    location: str | None = None  # for a redirect: where it starts

    def __str__(self) -> str:
        return f"{self.status}" + (f" -> {self.location}..." if self.location else "")


def may(who: str, permission: str | None) -> bool:
    if who in (ANONYMOUS, UNVERIFIED):
        return False
    if permission is None:
        return True
    return who in PERMISSIONS and permission in PERMISSIONS[who]


def staff_page(permission: str | None, *, verified_status: int = 200):
    """A page behind sign-in and OTP; `permission` None: every verified member."""

    def rule(who: str, target: Target) -> Expect:
        if who == ANONYMOUS:
            return Expect(302, LOGIN + quote(target.path))
        if who == UNVERIFIED:
            return Expect(302, OTP + quote(target.path))
        if permission is None or may(who, permission):
            return Expect(verified_status)
        return Expect(403)

    return rule


def before_otp(anonymous: Expect, unverified: Expect, verified: Expect):
    """A page of the sign-in steps themselves."""

    def rule(who: str, target: Target) -> Expect:
        return {ANONYMOUS: anonymous, UNVERIFIED: unverified}.get(who, verified)

    return rule


def public(status: int, location: str | None = None):
    return lambda who, target: Expect(status, location)


TO_LOGIN_FROM = lambda path: Expect(302, LOGIN + quote(path))  # noqa: E731

# Every route outside the admin, by its pattern.
PAGES = {
    "": staff_page(None),
    "deposits/": staff_page("payments.view_deposit"),
    "deposits/new/": staff_page("payments.view_deposit"),
    "deposits/accept/": staff_page(None, verified_status=405),  # POST only
    "deposits/expected/": staff_page("payments.view_expectedpayment"),
    "deposits/expected/upload/": staff_page(None, verified_status=405),  # POST only
    "deposits/expected/<uuid:code>/remove/": staff_page(None, verified_status=405),
    # One deposit: the sample FlashFX id names no deposit.
    "deposits/<str:flashfx_id>/": staff_page("payments.view_deposit", verified_status=404),
    "deposits/<str:flashfx_id>/reject/": staff_page("payments.reject_deposit", verified_status=404),
    "deposits/<str:flashfx_id>/review/<str:action>/": staff_page(None, verified_status=405),
    "deposits/<str:flashfx_id>/matches/<int:proposal_id>/<str:decision>/": staff_page(
        None, verified_status=405
    ),
    "approvals/": staff_page("payments.view_approval"),
    "approvals/<uuid:code>/<str:decision>/": staff_page(None, verified_status=405),
    "payouts/": staff_page("payments.view_withdrawal"),
    "payouts/new/": staff_page("payments.create_payout"),
    "payouts/waiting/": staff_page("payments.approve_payout"),
    "payouts/waiting/approve/": staff_page(None, verified_status=405),  # POST only
    # One payout: the sample code names no payout.
    "payouts/<str:code>/": staff_page("payments.view_withdrawal", verified_status=404),
    "payouts/<str:code>/edit/": staff_page("payments.create_payout", verified_status=404),
    "payouts/<str:code>/cancel/": staff_page(None, verified_status=405),
    "payouts/<str:code>/send-again/": staff_page(None, verified_status=405),
    "payouts/<str:code>/<str:decision>/": staff_page(None, verified_status=405),
    "payouts/policy/": staff_page("payments.view_withdrawal"),
    # Batch payouts: the sample code names no batch.
    "payouts/batches/": staff_page("payments.view_withdrawal"),
    "payouts/batches/new/": staff_page("payments.create_payout"),
    "payouts/batches/<str:code>/": staff_page("payments.view_withdrawal", verified_status=404),
    "payouts/batches/<str:code>/result.csv": staff_page(
        "payments.view_withdrawal", verified_status=404
    ),
    "payouts/batches/<str:code>/cancel/": staff_page(None, verified_status=405),
    "payouts/batches/<str:code>/<str:decision>/": staff_page(None, verified_status=405),
    "payments/": staff_page("payments.view_payment"),
    "payments/new/": staff_page("payments.create_payment"),
    "payments/new/quote/": staff_page("payments.create_payment"),
    # One payment: the sample code names no payment.
    "payments/<str:code>/": staff_page("payments.view_payment", verified_status=404),
    "payments/<str:code>/cancel/": staff_page(None, verified_status=405),  # POST only
    "payments/<str:code>/<str:decision>/": staff_page(None, verified_status=405),
    "parties/": staff_page("parties.view_sender"),
    "parties/recipients/": staff_page("parties.view_recipient"),
    "parties/recipients/new/": staff_page("parties.manage_recipient"),
    "parties/recipients/<str:flashfx_id>/": staff_page(
        "parties.view_recipient", verified_status=404
    ),
    "parties/recipients/<str:flashfx_id>/edit/": staff_page(
        "parties.manage_recipient", verified_status=404
    ),
    "parties/recipients/<str:flashfx_id>/delete/": staff_page(
        "parties.manage_recipient", verified_status=404
    ),
    "parties/recipients/<str:flashfx_id>/check-payee/": staff_page(None, verified_status=405),
    "parties/senders/": staff_page("parties.view_sender"),
    "parties/senders/new/": staff_page("parties.manage_sender"),
    "parties/senders/<str:flashfx_id>/": staff_page("parties.view_sender", verified_status=404),
    "parties/senders/<str:flashfx_id>/edit/": staff_page(
        "parties.manage_sender", verified_status=404
    ),
    "parties/senders/<str:flashfx_id>/delete/": staff_page(
        "parties.manage_sender", verified_status=404
    ),
    "parties/sub-clients/": staff_page("parties.view_subclient"),
    "parties/sub-clients/new/": staff_page("parties.create_subclient"),
    "webhooks/events/": staff_page("webhooks.view_inboundevent"),
    "webhooks/events/<int:pk>/": staff_page("webhooks.view_inboundevent", verified_status=404),
    "webhooks/events/replay/": staff_page(None, verified_status=405),  # POST only, admins
    "reconciliation/": staff_page("mirrors.view_driftreport"),
    "reconciliation/run/": staff_page(None, verified_status=405),  # POST only
    "reconciliation/reports/<int:pk>/": staff_page("mirrors.view_driftreport", verified_status=404),
    "reconciliation/items/<int:pk>/": staff_page("mirrors.view_driftreport", verified_status=404),
    "reconciliation/items/<int:pk>/reapply/": staff_page(None, verified_status=405),  # POST only
    "reconciliation/items/<int:pk>/resolve/": staff_page(None, verified_status=405),  # POST only
    "reconciliation/statement/": staff_page("mirrors.view_statementline"),
    "reconciliation/statement/fetch/": staff_page(None, verified_status=405),  # POST only
    "exports/": staff_page("backoffice.export_data"),
    "exports/start/<str:list_name>/": staff_page(None, verified_status=405),  # POST only
    # The sample code names no job (and a job is its owner's alone: tests/payments).
    "exports/<uuid:code>/download/": staff_page("backoffice.export_data", verified_status=404),
    "audit/": staff_page("backoffice.view_auditevent"),
    "accounts/sessions/": staff_page(None),
    "accounts/backup-codes/": staff_page(None),  # shows codes only right after they are made
    "accounts/step-up/": staff_page(None),
    "accounts/logout/everywhere/": staff_page(None, verified_status=405),  # POST only
    # Sign-in itself: a signed-in member is sent on to the code, then past it.
    "accounts/login/": before_otp(
        Expect(200), Expect(302, "/accounts/otp/?next="), Expect(302, "/accounts/otp/?next=")
    ),
    "accounts/otp/": before_otp(TO_LOGIN_FROM("/accounts/otp/"), Expect(200), Expect(302, "/")),
    # Enrolled already (sign_in enrols): a new authenticator only after an admin's reset.
    "accounts/otp/setup/": before_otp(
        TO_LOGIN_FROM("/accounts/otp/setup/"),
        Expect(302, "/accounts/otp/?next="),
        Expect(302, "/accounts/otp/?next="),
    ),
    "accounts/logout/": before_otp(TO_LOGIN_FROM("/accounts/logout/"), Expect(200), Expect(200)),
    # Google sign-in (public so that Google can send people back): without Google keys (as in
    # tests) its begin and complete steps are not there at all. Both are routed twice, ours
    # first, social-auth's (social:begin, social:complete) behind them.
    "accounts/social/login/<str:backend>/": public(404),
    "accounts/social/complete/<str:backend>/": public(404),
    # The rest of social-auth's URLs are not ours to open: behind sign-in and the code like
    # every page. SAML identity-provider launches (Google is not a SAML backend):
    "accounts/social/idp-launch/<str:backend>/": staff_page(None, verified_status=404),
    "accounts/social/app-launch/<str:backend>/": staff_page(None, verified_status=404),
    # Disconnecting a Google account: POST only.
    "accounts/social/disconnect/<str:backend>/": staff_page(None, verified_status=405),
    "accounts/social/disconnect/<str:backend>/<int:association_id>/": staff_page(
        None, verified_status=405
    ),
    "healthz": public(200),
    "readyz": public(503),  # in the walk no beat has run (and no FlashFX answers): not ready
    "metrics": public(404),  # a bearer token, not a sign-in; off without METRICS_TOKEN
    # FlashFX's receiver: signed requests, POST only, never a redirect (both spellings).
    "webhooks/flashfx/": public(405),
    "webhooks/flashfx": public(405),
}

# The admin's site-wide URLs, for the admin role (everyone else: 403, or the sign-in steps).
ADMIN_SITE = {
    "admin/": 200,
    "admin/login/": 302,  # signed in already: on to the admin
    "admin/logout/": 405,  # POST only
    "admin/password_change/": 200,
    "admin/password_change/done/": 200,
    "admin/autocomplete/": 403,  # without a field to complete
    "admin/jsi18n/": 200,
    "admin/r/<path:content_type_id>/<path:object_id>/": 404,  # a user has no page of its own
    "catch_all": 404,
}

# Every model in the admin: what the admin role may do there. A model registered in the admin
# without a line here fails the test (decide first whether admins may see it).
VIEW, ADD, CHANGE = "view", "add", "change"
ADMIN_MODELS: dict[str, set[str]] = {
    "auth.user": {VIEW, ADD, CHANGE},  # staff accounts and roles; never deleted
    "auth.group": {VIEW},  # the roles are code (backoffice.roles), shown only
    "backoffice.auditevent": {VIEW},
    "backoffice.staffsession": {VIEW},
    "webhooks.inboundevent": {VIEW},  # + replay; the rows themselves are read-only
    "webhooks.quarantinetally": {VIEW},  # unproven webhook requests counted per address and minute
    **{
        label: {VIEW}
        for label in (
            "parties.sender",
            "parties.recipient",
            "parties.subclient",
            "payments.deposit",
            "payments.withdrawal",
            "payments.payment",
            "mirrors.balancesnapshot",
            "mirrors.syncrun",
            "mirrors.driftreport",
            "mirrors.balancecheck",
        )
    },
    # Third-party tables: not for the admin role (superusers only).
    **{
        label: set()
        for label in (
            "otp_totp.totpdevice",
            "otp_static.staticdevice",
            "social_django.usersocialauth",
            "social_django.nonce",
            "social_django.association",
            "axes.accessattempt",
            "axes.accesslog",
            "axes.accessfailurelog",
        )
    },
}


def admin_role_status(target: Target) -> int | None:
    """What a verified admin-role member gets; None: nobody decided."""
    if target.view == "app_list":
        label = target.model
        return (
            200 if any(m.startswith(f"{label}.") and ADMIN_MODELS[m] for m in ADMIN_MODELS) else 404
        )
    if target.model is None:
        key = "catch_all" if target.view == "catch_all" else target.route.route
        return ADMIN_SITE.get(key)
    if target.model not in ADMIN_MODELS:
        return None
    allowed = ADMIN_MODELS[target.model]
    if target.view == "changelist":
        return 200 if allowed else 403
    if target.view == "add":
        return 200 if ADD in allowed else 403
    if target.view == "delete":
        return 403  # nothing is deleted through the admin
    if target.view == "redirect":  # <pk>/ -> <pk>/change/
        return 302
    if target.view == "history" and not target.exists:
        return 302  # Django looks for the row before checking the permission: back to the index
    if target.view in ("change", "history"):
        if not allowed:
            return 403
        return 200 if target.exists else 302  # a missing row: back to the index, with a message
    if target.view == "password":
        return 200 if CHANGE in allowed else 403
    if target.view == "device":
        return 200 if CHANGE in allowed else 403
    return None


def expected(who: str, target: Target) -> Expect | None:
    """The one place that decides; None: nobody has."""
    route = target.route.route
    if route.startswith("admin/"):
        status = admin_role_status(target)
        if status is None:
            return None
        if who == ANONYMOUS:
            return Expect(302, LOGIN + quote(target.path))
        if who == UNVERIFIED:
            return Expect(302, OTP + quote(target.path))
        if who == roles.ADMIN:
            return Expect(status)
        return Expect(403)  # every other role, and no role, whatever the page
    rule = PAGES.get(route)
    return rule(who, target) if rule else None


# --- The tests ----------------------------------------------------------------------------------


def test_every_url_has_a_decided_expectation():
    routes = walk()
    registered = {m._meta.label_lower for m in admin.site._registry}
    assert registered == set(ADMIN_MODELS), (
        "admin models without a line in ADMIN_MODELS (or lines for models no longer there): "
        f"{sorted(registered ^ set(ADMIN_MODELS))}"
    )
    undecided = sorted(
        {
            f"{t.route.route} ({t.route.name or 'unnamed'})"
            for t in targets(routes)
            for who in EVERYONE
            if expected(who, t) is None
        }
    )
    assert not undecided, f"URLs without an expectation: {undecided}"
    assert not set(PAGES) - {r.route for r in routes}, "PAGES names routes that no longer exist"
    assert not set(ADMIN_SITE) - {r.route for r in routes} - {"catch_all"}


# Who opens each page of the shell, written out (the rules above derive it from PERMISSIONS;
# this catches a permission that moved by mistake).
EVERY_ROLE = set(roles.ROLES)
WHO_OPENS = {
    "": EVERY_ROLE | {NOBODY},
    "deposits/": EVERY_ROLE,
    "payouts/": EVERY_ROLE,
    "payments/": EVERY_ROLE,
    "parties/": EVERY_ROLE,
    "webhooks/events/": EVERY_ROLE,
    "reconciliation/": EVERY_ROLE,
    "reconciliation/statement/": EVERY_ROLE,
    "exports/": {roles.OPERATOR, roles.APPROVER, roles.COMPLIANCE, roles.ADMIN},
    "audit/": {roles.COMPLIANCE, roles.ADMIN},
    "admin/": {roles.ADMIN},
}


@pytest.mark.parametrize("route", WHO_OPENS)
def test_the_role_matrix_is_as_decided(route):
    target = Target(Route(route, None, regex=False), f"/{route}")
    opens = {who for who in VERIFIED if expected(who, target) == Expect(200)}
    assert opens == WHO_OPENS[route]


def visitor(who: str, client):
    """Sign `client` in as `who` (nothing for anonymous)."""
    if who == ANONYMOUS:
        return None
    user = make_staff(None if who in (UNVERIFIED, NOBODY) else who, username=who.replace(" ", "-"))
    sign_in(client, user, verified=who != UNVERIFIED)
    return user


@pytest.fixture
def quiet_requests():
    """No warning with a traceback for each of the hundreds of 403s, 404s and 405s below."""
    logger = logging.getLogger("django.request")
    level = logger.level
    logger.setLevel(logging.ERROR)
    yield
    logger.setLevel(level)


@pytest.mark.parametrize("who", EVERYONE)
def test_every_url_answers_each_visitor_as_decided(client, who, quiet_requests):
    visitor(who, client)
    plan = [(target, expected(who, target)) for target in targets(walk())]
    undecided = sorted({t.route.route for t, want in plan if want is None})
    assert not undecided, f"no expectation for: {undecided}"
    wrong = []
    for target, want in plan:
        response = client.get(target.path)
        location = response.get("Location", "")
        if response.status_code != want.status or (
            want.location is not None and not location.startswith(want.location)
        ):
            got = Expect(response.status_code, location or None)
            name = target.route.name or "unnamed"
            wrong.append(f"{target.path} ({name}): expected {want}, got {got}")
        if "no-store" not in response.get("Cache-Control", ""):
            wrong.append(f"{target.path}: Cache-Control {response.get('Cache-Control')!r}")
    assert not wrong, f"{who}:\n" + "\n".join(wrong)
    assert len(plan) > 150  # the admin's per-model URLs were walked too


def test_a_member_with_the_admin_role_is_refused_the_admin_once_the_role_is_gone(client):
    """The admin checks the role on each request, not at sign-in."""
    user = make_staff(roles.ADMIN)
    sign_in(client, user)
    assert client.get("/admin/").status_code == 200
    user.groups.remove(Group.objects.get(name=roles.ADMIN))
    assert client.get("/admin/").status_code == 403


def test_a_superuser_without_a_role_may_use_the_admin(client, django_user_model):
    user = make_staff(None, username="root", is_superuser=True)
    sign_in(client, user)
    assert client.get("/admin/").status_code == 200
    unverified = Client()
    sign_in(unverified, user, verified=False)
    assert unverified.get("/admin/")["Location"].startswith(OTP)


def test_a_permission_given_to_a_person_not_a_role_opens_the_page(client):
    """Views check permissions, never role names."""
    user = make_staff(None)
    sign_in(client, user)
    assert client.get("/audit/").status_code == 403
    user.user_permissions.add(Permission.objects.get(codename="view_auditevent"))
    assert client.get("/audit/").status_code == 200


def test_a_password_without_the_code_cannot_end_every_session(client):
    """Sign-out everywhere is a verified member's tool: the password alone must not reach it."""
    user = make_staff(roles.VIEWER)
    elsewhere = Client()
    sign_in(elsewhere, user)
    sign_in(client, user, verified=False)

    response = client.post("/accounts/logout/everywhere/")

    assert response.status_code == 302
    assert response["Location"].startswith(OTP)
    assert elsewhere.get("/").status_code == 200  # the other session is still open
