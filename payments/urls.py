"""The money pages. Staff say "payouts" where FlashFX and our models say withdrawals.

Deposits are addressed by their FlashFX id; the fixed paths under deposits/ come first.
"""

from __future__ import annotations

from django.urls import path

from .views import (
    approvals,
    deposit_page,
    deposits,
    expected,
    exports,
    payment_orders,
    payout_batches,
    payout_policy,
    payouts,
)

app_name = "payments"

urlpatterns = [
    # The queue (payments/views/deposits.py)
    path("deposits/", deposits.deposit_queue, name="deposits"),
    path("deposits/new/", deposits.deposit_queue_new, name="deposits-new"),
    path("deposits/accept/", deposits.deposits_accept, name="deposits-accept"),
    # Expected payments and matching (payments/views/expected.py)
    path("deposits/expected/", expected.expected_list, name="expected"),
    path("deposits/expected/upload/", expected.expected_upload, name="expected-upload"),
    path(
        "deposits/expected/<uuid:code>/remove/",
        expected.expected_remove,
        name="expected-remove",
    ),
    # One deposit (payments/views/deposit_page.py), its review and its matches
    path("deposits/<str:flashfx_id>/", deposit_page.deposit_detail, name="deposit"),
    path("deposits/<str:flashfx_id>/reject/", deposit_page.deposit_reject, name="deposit-reject"),
    path(
        "deposits/<str:flashfx_id>/review/<str:action>/",
        deposits.deposit_review,
        name="deposit-review",
    ),
    path(
        "deposits/<str:flashfx_id>/matches/<int:proposal_id>/<str:decision>/",
        expected.match_decide,
        name="deposit-match",
    ),
    # Maker-checker (payments/views/approvals.py)
    path("approvals/", approvals.approval_list, name="approvals"),
    path(
        "approvals/<uuid:code>/<str:decision>/", approvals.approval_decide, name="approval-decide"
    ),
    # Payouts (payments/views/payouts.py); the fixed paths come before the codes.
    path("payouts/", payouts.payout_list, name="payouts"),
    path("payouts/new/", payouts.payout_new, name="payout-new"),
    path("payouts/policy/", payout_policy.payout_policy_page, name="payout-policy"),
    path("payouts/waiting/", payouts.payouts_waiting, name="payouts-waiting"),
    path(
        "payouts/waiting/approve/",
        payouts.payouts_approve_selected,
        name="payouts-approve-selected",
    ),
    # Batch payouts (payments/views/payout_batches.py), before the payout codes.
    path("payouts/batches/", payout_batches.batch_list, name="payout_batches"),
    path("payouts/batches/new/", payout_batches.batch_new, name="payout_batch_new"),
    path("payouts/batches/<str:code>/", payout_batches.batch_detail, name="payout_batch"),
    path(
        "payouts/batches/<str:code>/result.csv",
        payout_batches.batch_result,
        name="payout_batch_result",
    ),
    path(
        "payouts/batches/<str:code>/cancel/",
        payout_batches.batch_cancel,
        name="payout_batch_cancel",
    ),
    path(
        "payouts/batches/<str:code>/<str:decision>/",
        payout_batches.batch_decide,
        name="payout_batch_decide",
    ),
    path("payouts/<str:code>/", payouts.payout_detail, name="payout"),
    path("payouts/<str:code>/edit/", payouts.payout_edit, name="payout-edit"),
    path("payouts/<str:code>/cancel/", payouts.payout_cancel, name="payout-cancel"),
    path("payouts/<str:code>/send-again/", payouts.payout_send_again, name="payout-send-again"),
    path("payouts/<str:code>/<str:decision>/", payouts.payout_decide, name="payout-decide"),
    # International payments (payments/views/payment_orders.py); the fixed paths come first.
    path("payments/", payment_orders.payment_list, name="payments"),
    path("payments/new/", payment_orders.payment_new, name="payment-new"),
    path("payments/new/quote/", payment_orders.payment_quote, name="payment-quote"),
    path("payments/<str:code>/", payment_orders.payment_detail, name="payment"),
    path("payments/<str:code>/cancel/", payment_orders.payment_cancel, name="payment-cancel"),
    path(
        "payments/<str:code>/<str:decision>/",
        payment_orders.payment_decide,
        name="payment-decide",
    ),
    # Exports (payments/views/exports.py)
    path("exports/", exports.exports, name="exports"),
    path("exports/start/<str:list_name>/", exports.export_start, name="export-start"),
    path("exports/<uuid:code>/download/", exports.export_download, name="export-download"),
]
