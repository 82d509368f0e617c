"""Assign, note, accept, flag and bulk accept: services and the review action view."""

from __future__ import annotations

import pytest
from queue_support import make_deposit
from staff import make_staff, sign_in

from backoffice.models import AuditEvent
from payments.models import Deposit, DepositNote
from payments.services import review

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator():
    return make_staff("operator", "olivia")


def url(deposit, action):
    return f"/deposits/{deposit.flashfx_id}/review/{action}/"


def actions_on(deposit):
    return list(
        AuditEvent.objects.filter(object_id=str(deposit.pk), object_type="payments.deposit")
        .order_by("id")
        .values_list("action", flat=True)
    )


def test_assign_and_unassign_are_audited(operator):
    d = make_deposit()
    review.deposit_assign(deposit=d, assignee=operator, actor=operator)
    review.deposit_assign(deposit=d, assignee=None, actor=operator)
    assert Deposit.objects.get(pk=d.pk).assignee is None
    assert actions_on(d) == ["deposit.assigned", "deposit.unassigned"]


def test_accept_moves_review_state_and_leaves_flashfx_status_alone(operator):
    d = make_deposit(flashfx_status="CONFIRMED")
    review.deposit_accept(deposit=d, actor=operator)
    d.refresh_from_db()
    assert (d.review_state, d.flashfx_status) == ("accepted", "CONFIRMED")
    assert actions_on(d) == ["deposit.review.accepted"]


@pytest.mark.parametrize("status", ["REFUNDING", "REFUNDED", "CANCELLED"])
def test_accept_is_refused_when_flashfx_sends_the_money_back_or_cancelled_it(operator, status):
    d = make_deposit(flashfx_status=status)
    with pytest.raises(review.ReviewError, match=status):
        review.deposit_accept(deposit=d, actor=operator)
    assert Deposit.objects.get(pk=d.pk).review_state == "new"


def test_flag_needs_a_note_and_keeps_it(operator):
    d = make_deposit()
    with pytest.raises(review.ReviewError, match="note is required"):
        review.deposit_flag(deposit=d, note="  ", actor=operator)
    review.deposit_flag(deposit=d, note="Payer unknown to sales", actor=operator)
    d.refresh_from_db()
    assert d.review_state == "flagged"
    assert [n.text for n in d.notes.all()] == ["Payer unknown to sales"]
    assert actions_on(d) == ["deposit.note.added", "deposit.review.flagged"]


def test_bulk_accept_reports_what_it_accepted_and_what_it_skipped_and_why(operator):
    ok = make_deposit()
    refunded = make_deposit(flashfx_status="REFUNDED")
    done = make_deposit(review_state="accepted")
    result = review.deposits_accept_many(
        flashfx_ids=[ok.flashfx_id, refunded.flashfx_id, done.flashfx_id, "NOPE"], actor=operator
    )
    assert result.accepted == [ok.flashfx_id]
    skipped = dict(result.skipped)
    assert "REFUNDED" in skipped[refunded.flashfx_id]
    assert "accepted" in skipped[done.flashfx_id]
    assert skipped["NOPE"] == "No such deposit."


# The view ------------------------------------------------------------------------------------


def test_get_is_405_viewer_post_is_403(client):
    d = make_deposit()
    viewer = make_staff("viewer", "vera")
    sign_in(client, viewer)
    assert client.get(url(d, "accept")).status_code == 405
    assert client.post(url(d, "accept")).status_code == 403
    assert Deposit.objects.get(pk=d.pk).review_state == "new"


def test_unknown_deposit_is_404_and_unknown_action_is_400(client, operator):
    sign_in(client, operator)
    assert client.post("/deposits/NOPE/review/accept/").status_code == 404
    r = client.post(url(make_deposit(), "explode"), HTTP_HX_REQUEST="true")
    assert r.status_code == 400 and b"Unknown review action" in r.content


def test_plain_post_redirects_to_the_deposit_page_or_a_safe_next(client, operator):
    d = make_deposit()
    sign_in(client, operator)
    r = client.post(url(d, "assign"))
    assert r.status_code == 302 and r["Location"] == f"/deposits/{d.flashfx_id}/"
    r = client.post(url(d, "note"), {"text": "Called the payer", "next": "/deposits/?q=abc"})
    assert r["Location"] == "/deposits/?q=abc"
    r = client.post(url(d, "unassign"), {"next": "https://evil.example/"})
    assert r["Location"] == f"/deposits/{d.flashfx_id}/"
    d.refresh_from_db()
    assert d.assignee is None and d.notes.count() == 1


def test_htmx_post_answers_the_review_panel(client, operator):
    d = make_deposit()
    sign_in(client, operator)
    r = client.post(url(d, "assign"), HTTP_HX_REQUEST="true")
    assert r.status_code == 200
    body = r.content.decode()
    assert 'id="deposit-review"' in body and "olivia" in body and "Assigned to olivia." in body
    r = client.post(url(d, "flag"), {"text": ""}, HTTP_HX_REQUEST="true")
    assert "a note is required" in r.content.decode()
    assert Deposit.objects.get(pk=d.pk).review_state == "new"
    r = client.post(url(d, "flag"), {"text": "Looks odd"}, HTTP_HX_REQUEST="true")
    assert "Flagged" in r.content.decode() and "Looks odd" in r.content.decode()
    assert DepositNote.objects.filter(deposit=d).count() == 1


def test_accept_on_a_refunded_deposit_says_why(client, operator):
    d = make_deposit(flashfx_status="REFUNDED")
    sign_in(client, operator)
    r = client.post(url(d, "accept"), {"next": "/deposits/"}, follow=True)
    assert "nothing to accept" in r.content.decode()
    assert Deposit.objects.get(pk=d.pk).review_state == "new"


def test_bulk_accept_view(client, operator):
    a, b = make_deposit(), make_deposit(flashfx_status="REFUNDING")
    sign_in(client, operator)
    r = client.post(
        "/deposits/accept/",
        {"deposit": [a.flashfx_id, b.flashfx_id], "next": "/deposits/?status=CONFIRMED"},
    )
    assert r.status_code == 302 and r["Location"] == "/deposits/?status=CONFIRMED"
    texts = [m.message for m in r.wsgi_request._messages]
    assert "Accepted 1 deposit." in texts
    assert any(t.startswith(f"Skipped {b.flashfx_id}: ") and "REFUNDING" in t for t in texts)
    assert Deposit.objects.get(pk=a.pk).review_state == "accepted"


def test_bulk_accept_is_403_for_a_viewer(client):
    a = make_deposit()
    sign_in(client, make_staff("viewer", "vera"))
    assert client.post("/deposits/accept/", {"deposit": [a.flashfx_id]}).status_code == 403
    assert Deposit.objects.get(pk=a.pk).review_state == "new"


def test_assign_to_someone_else_and_a_bad_member_id(client, operator):
    d = make_deposit()
    other = make_staff("operator", "oscar")
    sign_in(client, operator)
    client.post(url(d, "assign"), {"assignee": str(other.pk)})
    assert Deposit.objects.get(pk=d.pk).assignee == other
    assert client.post(url(d, "assign"), {"assignee": "x1"}).status_code == 400


def test_bulk_accept_records_what_was_asked(operator):
    a = make_deposit()
    review.deposits_accept_many(flashfx_ids=[a.flashfx_id, "NOPE"], actor=operator)
    event = AuditEvent.objects.get(action="deposit.bulk_accept")
    assert event.details["accepted"] == [a.flashfx_id]
    assert event.details["skipped"] == [["NOPE", "No such deposit."]]


def test_the_panel_tag_renders_for_the_deposit_page(rf, operator):
    from django.template import Context, Template

    d = make_deposit(flashfx_status="REVIEWING", third_party=True)
    review.deposit_note_add(deposit=d, text="Rang the payer", actor=operator)
    request = rf.get(f"/deposits/{d.flashfx_id}/")
    request.user = operator
    html = Template("{% load deposit_review %}{% deposit_review_panel deposit %}").render(
        Context({"deposit": d, "request": request, "user": operator, "csrf_token": "t"})
    )
    for text in ["Assign to me", "Accept", "Flag", "Add note", "Rang the payer", "held by FlashFX"]:
        assert text in html, text
    assert "third-party" in html


def test_the_panel_shows_a_viewer_no_buttons(rf):
    from django.template import Context, Template

    viewer = make_staff("viewer", "vera")
    d = make_deposit()
    request = rf.get("/")
    request.user = viewer
    html = Template("{% load deposit_review %}{% deposit_review_panel deposit %}").render(
        Context({"deposit": d, "request": request})
    )
    assert "Review" in html and "<button" not in html
