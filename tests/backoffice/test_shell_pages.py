"""The staff shell: every page renders inside the layout with its navigation and says what it is
for; our own 403, 404, CSRF and 500 pages; the audit trail page."""

from __future__ import annotations

import re
from html import unescape

import pytest
from django.contrib.auth import get_user_model
from django.template.loader import render_to_string
from django.test import Client
from staff import PASSWORD, make_staff, sign_in

from backoffice import audit, roles, views
from backoffice.models import AuditEvent

pytestmark = pytest.mark.django_db

# page: (a role that may see it, the template, its heading)
SHELL = {
    "/": (roles.VIEWER, "backoffice/dashboard.html", "Dashboard"),
    "/deposits/": (roles.VIEWER, "payments/deposits/queue.html", "Deposits"),
    "/deposits/expected/": (roles.VIEWER, "payments/expected/list.html", "Expected payments"),
    "/payouts/": (roles.VIEWER, "payments/payouts/list.html", "Payouts"),
    "/payments/": (roles.VIEWER, "payments/payment_orders/list.html", "Payments"),
    "/parties/": (roles.VIEWER, "parties/index.html", "Parties"),
    "/webhooks/events/": (roles.VIEWER, "webhooks/events.html", "Webhook events"),
    "/exports/": (roles.OPERATOR, "payments/exports/jobs.html", "Exports"),
    "/reconciliation/": (roles.VIEWER, "backoffice/reconciliation/overview.html", "Reconciliation"),
    "/approvals/": (roles.VIEWER, "payments/approvals/list.html", "Approvals"),
    "/audit/": (roles.COMPLIANCE, "backoffice/audit.html", "Audit trail"),
}


def text_of(html: str) -> str:
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())


def main_of(html: str) -> str:
    match = re.search(r'<main id="main">(.*)</main>', html, re.DOTALL)
    assert match, "no <main>"
    return match[1]


def templates_of(response) -> list[str]:
    return [t.name for t in response.templates]


@pytest.fixture
def as_role(client):
    def sign_in_as(role: str | None):
        sign_in(client, make_staff(role))
        return client

    return sign_in_as


@pytest.mark.parametrize("path", SHELL)
def test_each_shell_page_renders_in_the_layout_and_says_what_it_is_for(as_role, path):
    role, template, heading = SHELL[path]
    response = as_role(role).get(path)

    assert response.status_code == 200
    assert template in templates_of(response)
    assert "base.html" in templates_of(response)
    html = response.content.decode()
    assert f"<h1>{heading}</h1>" in html
    assert f"<title>{heading} · FlashFX back-office</title>" in html
    # The navigation, with this page marked as the current one.
    assert '<nav aria-label="Main"' in html
    current = re.findall(r'<a href="([^"]+)" aria-current="page">', html)
    assert current == [path]
    # Says what will be there, in words.
    words = text_of(main_of(html)).removeprefix(heading).strip()
    assert len(words) > 40, words


def test_the_dashboard_names_the_member_and_their_roles(as_role):
    html = as_role(roles.APPROVER).get("/").content.decode()
    assert "Signed in as <strong>approver</strong> (approver)" in html
    # Tiles for every other page the role may open.
    tiles = re.findall(r'<li><a href="([^"]+)">', main_of(html))
    assert tiles == [
        "/deposits/",
        "/deposits/expected/",
        "/payouts/",
        "/payments/",
        "/approvals/",
        "/parties/",
        "/webhooks/events/",
        "/reconciliation/",
        "/exports/",
    ]


def test_the_demo_dashboard_links_the_sandbox_console_and_names_payouts_as_it_does(
    as_role, settings
):
    """Staff say payout; the console, playing FlashFX, lists withdrawals: the hint says both."""
    settings.DEBUG = True
    html = as_role(roles.VIEWER).get("/").content.decode()
    assert f'<a href="{settings.FLASHFX_API_URL.rstrip("/")}/console/">' in html
    assert "move a payout on: FlashFX lists payouts as withdrawals" in html


def test_the_dashboard_tells_a_member_without_a_role_to_ask_for_one(as_role):
    html = as_role(None).get("/").content.decode()
    assert "with no role yet: ask an administrator for one" in html
    assert "your role gives you no pages" in html


def test_the_layout_offers_sessions_and_a_sign_out_form(as_role):
    html = as_role(roles.VIEWER).get("/").content.decode()
    assert '<a href="/accounts/sessions/"' in html
    assert re.search(r'<form method="post" action="/accounts/logout/"', html)
    assert 'name="csrfmiddlewaretoken"' in html
    assert '<span class="roles">viewer</span>' in html


# --- Error pages --------------------------------------------------------------------------------


def test_a_missing_page_is_our_404(as_role, settings):
    assert settings.DEBUG is False  # pytest-django: Django's technical 404 is never shown
    response = as_role(roles.VIEWER).get("/no-such-page/")
    assert response.status_code == 404
    assert "404.html" in templates_of(response)
    html = response.content.decode()
    assert "<h1>Not found</h1>" in html
    assert '<nav aria-label="Main"' in html  # still inside the shell
    assert "Page not found at" not in html  # not Django's technical page


def test_a_missing_page_asks_a_stranger_to_sign_in_first(client):
    """No 404 before sign-in: which URLs exist is not for strangers to learn."""
    response = client.get("/no-such-page/")
    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=/no-such-page/"


def test_a_refused_page_is_our_403(as_role):
    response = as_role(roles.VIEWER).get("/audit/")
    assert response.status_code == 403
    assert "403.html" in templates_of(response)
    html = response.content.decode()
    assert "<h1>Not allowed</h1>" in html
    assert "ask an administrator" in html
    assert '<nav aria-label="Main"' in html


def test_the_admin_refuses_with_our_403_too(as_role):
    response = as_role(roles.OPERATOR).get("/admin/")
    assert response.status_code == 403
    assert "403.html" in templates_of(response)


def test_a_form_without_its_csrf_token_gets_our_page():
    client = Client(enforce_csrf_checks=True)
    make_staff(roles.VIEWER, username="ada")

    response = client.post("/accounts/login/", {"username": "ada", "password": PASSWORD})

    assert response.status_code == 403
    assert "403_csrf.html" in templates_of(response)
    html = response.content.decode()
    assert "This form has expired" in html
    assert "reload the page and try again" in html
    assert not re.search(r"<[^>]+\sstyle\s*=", html)  # Django's own page has inline styles
    assert not re.search(r"<style\b", html)
    assert "CSRF verification failed" not in html
    assert "_auth_user_id" not in client.session  # and nobody was signed in


def test_with_its_csrf_token_the_same_form_is_accepted():
    client = Client(enforce_csrf_checks=True)
    make_staff(roles.VIEWER, username="ada")
    page = client.get("/accounts/login/")
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.content.decode())[1]

    response = client.post(
        "/accounts/login/",
        {"username": "ada", "password": PASSWORD, "csrfmiddlewaretoken": token},
    )

    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/otp/")


def test_the_500_page_renders_on_its_own():
    """Django renders 500.html with no context and no request: nothing may depend on them."""
    html = render_to_string("500.html")
    assert "<h1>Something went wrong</h1>" in html
    assert '<link rel="stylesheet" href="/static/css/backoffice.css">' in html
    assert "{%" not in html and "{{" not in html
    assert not re.search(r"<[^>]+\sstyle\s*=", html)
    assert not re.search(r"<script\b(?![^>]*\bsrc=)", html)


# --- The audit trail ----------------------------------------------------------------------------


def events(*actions: str) -> list[AuditEvent]:
    return [
        audit.record(action, details={"n": n}, obj=get_user_model().objects.first())
        for n, action in enumerate(actions)
    ]


def rows_of(html: str) -> list[str]:
    """The action badge of each row, top to bottom."""
    return re.findall(r'<td><span class="badge">([^<]+)</span></td>', html)


def test_the_audit_trail_lists_events_newest_first(as_role):
    client = as_role(roles.COMPLIANCE)
    before = AuditEvent.objects.count()
    recorded = events(audit.EXPORTED, audit.SETTINGS_CHANGED, audit.OTP_RESET)

    response = client.get("/audit/")

    assert response.status_code == 200
    shown = [e.pk for e in response.context["events"]]
    assert shown == sorted(shown, reverse=True)
    assert shown[:3] == [e.pk for e in reversed(recorded)]
    assert len(shown) == before + 3
    assert rows_of(response.content.decode())[:3] == [
        audit.OTP_RESET,
        audit.SETTINGS_CHANGED,
        audit.EXPORTED,
    ]


def test_the_audit_trail_filters_by_action(as_role):
    client = as_role(roles.COMPLIANCE)
    events(audit.EXPORTED, audit.SETTINGS_CHANGED, audit.EXPORTED)

    response = client.get("/audit/", {"action": audit.EXPORTED})

    assert rows_of(response.content.decode()) == [audit.EXPORTED, audit.EXPORTED]
    assert {e.action for e in response.context["events"]} == {audit.EXPORTED}
    # The filter offers every action recorded, this one selected.
    html = response.content.decode()
    assert f'<option value="{audit.EXPORTED}" selected>' in html
    assert html.count(f'<option value="{audit.EXPORTED}"') == 1  # recorded twice, offered once
    assert f'<option value="{audit.SETTINGS_CHANGED}">' in html


def test_the_audit_trail_filters_by_actor(as_role):
    client = as_role(roles.COMPLIANCE)
    ada = make_staff(None, username="ada")
    audit.record(audit.EXPORTED, actor=ada)
    audit.record(audit.EXPORTED)

    response = client.get("/audit/", {"actor": "ada"})

    assert [e.actor for e in response.context["events"]] == ["ada"]


def test_no_matching_event_says_so(as_role):
    response = as_role(roles.COMPLIANCE).get("/audit/", {"action": "no.such.action"})
    assert response.status_code == 200
    assert "No audit events match." in response.content.decode()


def test_the_audit_trail_pages_by_keyset(as_role, monkeypatch):
    monkeypatch.setattr(views, "AUDIT_PAGE", 2)
    client = as_role(roles.COMPLIANCE)
    events(audit.EXPORTED, audit.EXPORTED, audit.EXPORTED)
    ids = list(
        AuditEvent.objects.filter(action=audit.EXPORTED)
        .order_by("-pk")
        .values_list("pk", flat=True)
    )

    first = client.get("/audit/", {"action": audit.EXPORTED})
    assert [e.pk for e in first.context["events"]] == ids[:2]
    older = re.search(
        r'<a href="\?before=(\d+)&amp;action=([^"]+)">Older</a>', first.content.decode()
    )
    assert older and int(older[1]) == ids[1]

    second = client.get("/audit/", {"action": audit.EXPORTED, "before": older[1]})
    assert [e.pk for e in second.context["events"]] == ids[2:]
    assert "Older" not in second.content.decode()


@pytest.mark.parametrize("before", ["\u00b2", "9" * 30, "-1", "1e3", "abc", ""])
def test_a_cursor_that_is_not_an_event_id_shows_the_first_page(as_role, before):
    client = as_role(roles.COMPLIANCE)
    events(audit.EXPORTED)

    response = client.get("/audit/", {"before": before})

    assert response.status_code == 200
    assert response.context["events"][0] == AuditEvent.objects.order_by("-pk").first()


def test_an_htmx_request_gets_only_the_rows(as_role):
    client = as_role(roles.COMPLIANCE)
    events(audit.EXPORTED, audit.SETTINGS_CHANGED)

    response = client.get("/audit/", {"action": audit.EXPORTED}, headers={"HX-Request": "true"})

    assert response.status_code == 200
    assert templates_of(response) == ["backoffice/audit_rows.html"]
    html = response.content.decode()
    assert "<html" not in html and "<nav" not in html and "<form" not in html
    assert html.lstrip().startswith("<table>")
    assert rows_of(html) == [audit.EXPORTED]


def test_a_boosted_request_gets_the_whole_page(as_role):
    """The navigation is hx-boost'ed: a click there swaps in the whole page."""
    client = as_role(roles.COMPLIANCE)
    response = client.get("/audit/", headers={"HX-Request": "true", "HX-Boosted": "true"})
    assert response.status_code == 200
    assert "backoffice/audit.html" in templates_of(response)
    assert "<html" in response.content.decode()


def test_going_back_to_a_filtered_audit_page_restores_the_whole_page(as_role):
    client = as_role(roles.COMPLIANCE)
    response = client.get(
        "/audit/",
        {"action": audit.EXPORTED},
        headers={"HX-Request": "true", "HX-History-Restore-Request": "true"},
    )
    assert "<html" in response.content.decode()


def test_the_audit_page_varies_on_hx_request(as_role):
    response = as_role(roles.COMPLIANCE).get("/audit/")
    assert "hx-request" in response.get("Vary", "").lower()


def test_an_htmx_request_still_needs_the_permission(as_role):
    response = as_role(roles.VIEWER).get("/audit/", headers={"HX-Request": "true"})
    assert response.status_code == 403


def test_a_viewer_may_not_read_the_audit_trail(as_role):
    response = as_role(roles.VIEWER).get("/audit/")
    assert response.status_code == 403
    assert "<table>" not in response.content.decode()


def test_an_htmx_request_after_the_session_ended_reloads_to_sign_in(client):
    """Not a sign-in page swapped into the table: htmx is told to go there."""
    response = client.get("/audit/", headers={"HX-Request": "true"})
    assert response.status_code == 200
    assert response["HX-Redirect"] == "/accounts/login/?next=/audit/"


def test_the_audit_trail_shows_untrusted_text_escaped(as_role):
    client = as_role(roles.ADMIN)
    audit.record(audit.EXPORTED, details={"file": "<script>alert(1)</script>"})
    html = client.get("/audit/").content.decode()
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
