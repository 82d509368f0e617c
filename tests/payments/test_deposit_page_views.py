"""The deposit page, its reject form and the approvals page, through Django's test client:
who sees what, the step-up, the refusals as the member reads them, and one refund however
often the form is sent."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse
from django.utils import timezone
from refund_support import app_at, confirmed_deposit, local_deposit, log_calls, refund_calls
from staff import make_staff, sign_in

from mirrors.models import StatusChange
from payments.models import Approval, DepositNote, DepositRefund

pytestmark = pytest.mark.django_db
State = DepositRefund.State
STALE = 3600  # seconds since the last code: older than STAFF_STEP_UP_MAX_AGE_SECONDS


@pytest.fixture
def app_sandbox(sandbox, settings):
    with app_at(sandbox, settings):
        yield sandbox


@pytest.fixture
def eager(settings):
    settings.CELERY_TASK_ALWAYS_EAGER = True


def page(deposit):
    return reverse("payments:deposit", args=[deposit.flashfx_id])


def reject_url(deposit):
    return reverse("payments:deposit-reject", args=[deposit.flashfx_id])


def as_member(client, role, username=None, **kwargs):
    user = make_staff(role, username)
    sign_in(client, user, **kwargs)
    return user


def post_reject(client, deposit, **data):
    form = {"reason": "not_expected", "reason_text": "", "amount": str(deposit.amount)} | data
    return client.post(reject_url(deposit), form, headers={"referer": reject_url(deposit)})


@pytest.fixture
def commits(django_capture_on_commit_callbacks):
    """Run what the views hand to transaction.on_commit (the test's transaction never
    commits): with eager Celery, the send task runs there."""

    def run(call, *args, **kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            return call(*args, **kwargs)

    return run


# --- The page ------------------------------------------------------------------------------------


def test_the_page_shows_everything_known_about_the_deposit(client):
    as_member(client, "viewer")
    deposit = local_deposit(
        amount="1250.00",
        external_reference="INV-2041 Pat",
        sender_bank_name="Westpac",
        total_fee=Decimal("0.00"),
    )
    response = client.get(page(deposit))
    assert response.status_code == 200
    html = response.content.decode()
    for text in ("Pat Payer", "Westpac", "062000", "11112222", "INV-2041 Pat", "AUD 1,250.00"):
        assert text in html
    assert 'id="flashfx-status">CONFIRMED<' in html
    assert 'id="deposit-refunds"' in html
    assert "hx-trigger" not in html  # nothing in flight: no polling


def test_a_viewer_sees_no_reject_button_an_operator_does(client):
    deposit = local_deposit()
    as_member(client, "viewer")
    assert ">Reject</a>" not in client.get(page(deposit)).content.decode()
    as_member(client, "operator")
    html = client.get(page(deposit)).content.decode()
    assert f'href="{reject_url(deposit)}">Reject</a>' in html


def test_a_deposit_flashfx_is_reviewing_says_why_it_cannot_be_rejected(client):
    as_member(client, "operator")
    deposit = local_deposit("REVIEWING")
    html = client.get(page(deposit)).content.decode()
    assert ">Reject</a>" not in html
    assert "FlashFX is still reviewing this deposit" in html


def test_an_unknown_deposit_is_404(client):
    as_member(client, "viewer")
    assert client.get("/deposits/000000000000000000000000/").status_code == 404


def test_the_timeline_merges_status_changes_actions_and_notes_with_links_to_webhooks(client):
    user = as_member(client, "operator")
    deposit = local_deposit()
    StatusChange.objects.create(
        entity="payments.deposit",
        flashfx_id=deposit.flashfx_id,
        old_status="",
        new_status="INITIALISED",
        observed_at=timezone.now(),
        source="sync",
    )
    StatusChange.objects.create(
        entity="payments.deposit",
        flashfx_id=deposit.flashfx_id,
        old_status="INITIALISED",
        new_status="CONFIRMED",
        observed_at=timezone.now(),
        source="webhook #42",
    )
    DepositNote.objects.create(deposit=deposit, author=user, text="Payer phoned about it")
    post_reject(client, deposit, reason="duplicate")
    html = client.get(page(deposit)).content.decode()
    assert "Arrived at FlashFX as INITIALISED" in html
    assert "FlashFX: INITIALISED \u2192 CONFIRMED" in html
    assert f'<a href="{reverse("webhooks:event", args=[42])}">webhook #42</a>' in html
    assert "Payer phoned about it" in html
    assert "Rejection requested" in html and "by operator" in html
    # In the timeline (the review panel above it lists the notes too), oldest first.
    timeline = html[html.index('id="deposit-timeline"') :]
    order = [timeline.index(t) for t in ("as INITIALISED", "Payer phoned", "Rejection requested")]
    assert order == sorted(order)


def test_the_refunds_section_polls_itself_while_a_refund_is_in_flight(client, settings):
    settings.DEPOSIT_PAGE_POLL_SECONDS = 2
    as_member(client, "operator")
    deposit = local_deposit()
    post_reject(client, deposit)
    html = client.get(page(deposit)).content.decode()
    assert 'hx-trigger="every 2s"' in html
    fragment = client.get(page(deposit), headers={"HX-Request": "true"})
    assert fragment.status_code == 200
    text = fragment.content.decode()
    assert 'id="deposit-refunds"' in text and "<html" not in text
    assert 'id="deposit-timeline"' in text and 'hx-swap-oob="true"' in text  # out of band
    assert "Queued" in text
    assert fragment["Vary"] and "HX-Request" in fragment["Vary"]
    # Once FlashFX completes it, the answer has no trigger: the polling stops.
    DepositRefund.objects.update(state=State.COMPLETED)
    deposit.flashfx_status = "REFUNDED"
    deposit.save()
    text = client.get(page(deposit), headers={"HX-Request": "true"}).content.decode()
    assert "hx-trigger" not in text and "REFUNDED" in text


# --- The reject form -------------------------------------------------------------------------


def test_the_reject_form_states_where_the_money_goes_and_defaults_to_the_full_amount(client):
    as_member(client, "operator")
    deposit = local_deposit(amount="480.25")
    response = client.get(reject_url(deposit))
    assert response.status_code == 200
    html = response.content.decode()
    assert 'id="refund-payer">Pat Payer<' in html
    assert 'id="refund-bsb">062000<' in html
    assert 'id="refund-account">11112222<' in html
    assert 'value="480.25"' in html
    assert '<label for="id_reason">Reason</label>' in html
    assert '<label for="id_amount">Amount to refund</label>' in html


@pytest.mark.parametrize("role", ["viewer", "approver", "compliance", "admin"])
def test_members_who_may_not_reject_get_403_on_the_form_and_its_post(client, role):
    as_member(client, role)
    deposit = local_deposit()
    assert client.get(reject_url(deposit)).status_code == 403
    assert post_reject(client, deposit).status_code == 403
    assert not DepositRefund.objects.exists()


def test_a_second_rejection_while_one_is_queued_says_so(client):
    as_member(client, "operator")
    deposit = local_deposit()
    assert post_reject(client, deposit).status_code == 302
    second = post_reject(client, deposit)
    assert second.status_code == 409
    assert "This deposit is already being refunded." in second.content.decode()
    assert DepositRefund.objects.count() == 1


def test_the_form_of_an_unknown_deposit_is_404(client):
    as_member(client, "operator")
    assert client.get("/deposits/000000000000000000000000/reject/").status_code == 404


def test_the_form_says_why_a_deposit_cannot_be_rejected(client):
    as_member(client, "operator")
    deposit = local_deposit("REVIEWING")
    html = client.get(reject_url(deposit)).content.decode()
    assert "FlashFX is still reviewing this deposit" in html
    assert "refund-form" not in html


def test_a_stale_step_up_sends_the_member_for_a_code_first(client):
    as_member(client, "operator", otp_age=STALE)
    deposit = local_deposit()
    response = post_reject(client, deposit)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("step-up"))
    assert "reject" in response["Location"]  # and back to the form afterwards
    assert not DepositRefund.objects.exists()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"amount": "250.01"}, "cannot be more than the deposit"),
        ({"amount": "0"}, "must be more than zero"),
        ({"amount": "-3"}, "must be more than zero"),
        ({"amount": "ten"}, "must be a number"),
        ({"reason": ""}, "Choose a reason"),
        ({"reason": "other", "reason_text": ""}, "when the reason is"),
        ({"reason": "other", "reason_text": "Zahlung zurück"}, "plain letters"),
    ],
)
def test_the_form_refuses_with_a_clear_sentence(client, data, message):
    as_member(client, "operator")
    deposit = local_deposit(amount="250.00")
    response = post_reject(client, deposit, **data)
    assert response.status_code == 422
    assert message in response.content.decode()
    assert not DepositRefund.objects.exists()


def test_rejecting_queues_the_refund_and_sends_it_after_commit(
    client, app_sandbox, eager, commits, caplog
):
    log_calls(caplog)
    as_member(client, "operator")
    deposit = confirmed_deposit(app_sandbox, "75.00")
    response = commits(post_reject, client, deposit, amount="70.00", reason="wrong_account")
    assert response.status_code == 302 and response["Location"] == page(deposit)
    refund = DepositRefund.objects.get()
    assert (refund.amount, refund.state) == (Decimal("70.00"), State.SENT)
    assert len(refund_calls(caplog)) == 1
    assert app_sandbox.deposit_status(deposit.flashfx_id) == "REFUNDING"
    html = client.get(page(deposit)).content.decode()
    assert 'id="flashfx-status">REFUNDING<' in html


def test_sending_the_form_twice_makes_one_refund_and_one_call(
    client, app_sandbox, eager, commits, caplog
):
    log_calls(caplog)
    as_member(client, "operator")
    deposit = confirmed_deposit(app_sandbox)
    assert commits(post_reject, client, deposit).status_code == 302
    second = commits(post_reject, client, deposit)
    assert second.status_code == 409  # the refund already went out: FlashFX says REFUNDING
    assert "only a CONFIRMED deposit can be rejected" in second.content.decode()
    assert DepositRefund.objects.count() == 1
    assert len(refund_calls(caplog)) == 1


def test_a_refusal_by_flashfx_shows_its_code_and_message_on_the_page(
    client, app_sandbox, eager, commits
):
    as_member(client, "operator")
    deposit = confirmed_deposit(app_sandbox)
    app_sandbox.advance("deposits", deposit.flashfx_id, "REFUNDING", refundAmount=1)
    commits(post_reject, client, deposit)
    html = client.get(page(deposit)).content.decode()
    assert "INVALID_STATUS" in html and "Only a CONFIRMED deposit can be refunded" in html


# --- Approvals -------------------------------------------------------------------------------


def decide(client, approval, decision, **data):
    return client.post(
        reverse("payments:approval-decide", args=[approval.code, decision]),
        data,
        headers={"referer": reverse("payments:approvals")},
    )


@pytest.fixture
def large(settings):
    settings.DEPOSIT_REFUND_APPROVAL_THRESHOLD = Decimal("100.00")


def test_a_large_rejection_waits_on_the_approvals_page_and_goes_out_once_approved(
    client, app_sandbox, eager, large, commits, caplog
):
    log_calls(caplog)
    as_member(client, "operator")
    deposit = confirmed_deposit(app_sandbox, "150.00")
    post_reject(client, deposit)
    refund = DepositRefund.objects.get()
    assert refund.state == State.AWAITING_APPROVAL
    assert "waits for a second member" in client.get(page(deposit)).content.decode()
    assert refund_calls(caplog) == []

    # The operator sees it pending but cannot approve their own.
    html = client.get(reverse("payments:approvals")).content.decode()
    assert deposit.flashfx_id in html and "You asked for this" in html
    assert decide(client, refund.approval, "approve").status_code == 403  # no permission

    as_member(client, "approver")
    html = client.get(reverse("payments:approvals")).content.decode()
    assert ">Approve</button>" in html and "150.00" in html
    response = commits(decide, client, refund.approval, "approve")
    assert response.status_code == 302 and response["Location"] == reverse("payments:approvals")
    refund.refresh_from_db()
    assert refund.state == State.SENT
    assert len(refund_calls(caplog)) == 1
    html = client.get(reverse("payments:approvals")).content.decode()
    assert "Recent decisions" in html and "Approved" in html


def test_an_approver_cannot_approve_their_own_request(client, large):
    approver = make_staff("approver")  # who may also reject deposits, here
    approver.user_permissions.add(Permission.objects.get(codename="reject_deposit"))
    sign_in(client, approver)
    deposit = local_deposit(amount="500.00")
    post_reject(client, deposit)
    approval = Approval.objects.get()
    response = decide(client, approval, "approve")
    assert response.status_code == 302
    approval.refresh_from_db()
    assert approval.state == Approval.State.PENDING
    page_html = client.get(reverse("payments:approvals")).content.decode()
    assert "someone else must approve" in page_html


def test_declining_needs_the_step_up_and_keeps_the_note(client, large):
    as_member(client, "operator")
    deposit = local_deposit(amount="500.00")
    post_reject(client, deposit)
    approval = Approval.objects.get()
    as_member(client, "approver", otp_age=STALE)
    response = decide(client, approval, "decline", note="Expected payment")
    assert response["Location"].startswith(reverse("step-up"))
    assert Approval.objects.get().state == Approval.State.PENDING
    as_member(client, "approver", "approver-2")
    decide(client, approval, "decline", note="Expected payment")
    approval.refresh_from_db()
    assert (approval.state, approval.decision_note) == (Approval.State.DECLINED, "Expected payment")
    assert DepositRefund.objects.get().state == State.DECLINED
    # Declined: the deposit can be rejected again.
    as_member(client, "operator", "operator-2")
    assert ">Reject</a>" in client.get(page(deposit)).content.decode()


def test_deciding_is_post_only_and_an_unknown_decision_is_404(client, large):
    as_member(client, "operator")
    post_reject(client, local_deposit(amount="500.00"))
    approval = Approval.objects.get()
    as_member(client, "approver")
    url = reverse("payments:approval-decide", args=[approval.code, "approve"])
    assert client.get(url).status_code == 405
    assert decide(client, approval, "maybe").status_code == 404


def test_approving_an_expired_request_says_so_and_closes_it(client, large):
    as_member(client, "operator")
    deposit = local_deposit(amount="500.00")
    post_reject(client, deposit)
    approval = Approval.objects.get()
    Approval.objects.filter(pk=approval.pk).update(expires_at=timezone.now())
    as_member(client, "approver")
    response = decide(client, approval, "approve")
    assert response.status_code == 302
    html = client.get(reverse("payments:approvals")).content.decode()
    assert "This approval expired before it was decided; ask again." in html
    assert Approval.objects.get().state == Approval.State.EXPIRED
    assert DepositRefund.objects.get().state == State.EXPIRED
    as_member(client, "operator", "operator-2")
    html = client.get(page(deposit)).content.decode()
    assert "Expired" in html and ">Reject</a>" in html  # it may be asked again
