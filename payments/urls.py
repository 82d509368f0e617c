"""The money pages. Staff say "payouts" where FlashFX and our models say withdrawals."""

from __future__ import annotations

from django.urls import path

from . import views

app_name = "payments"

urlpatterns = [
    path("deposits/", views.deposits, name="deposits"),
    path("payouts/", views.payouts, name="payouts"),
    path("payments/", views.payments, name="payments"),
    path("exports/", views.exports, name="exports"),
]
