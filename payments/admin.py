from __future__ import annotations

from django.contrib import admin

from mirrors.admin import MirrorAdmin
from parties.admin import RecipientAdmin, SenderAdmin, SubClientAdmin

from .exports.admin import offer_exports
from .models import Deposit, Payment, Withdrawal


@admin.register(Deposit)
class DepositAdmin(MirrorAdmin):
    list_display = (
        "flashfx_id",
        "flashfx_status",
        "amount",
        "currency",
        "external_reference",
        "sender_account_name",
        "flashfx_created_at",
        "anomaly",
    )
    list_filter = ("flashfx_status", "currency")
    search_fields = (*MirrorAdmin.search_fields, "external_reference", "sender_account_name")
    date_hierarchy = "flashfx_created_at"


@admin.register(Withdrawal)
class WithdrawalAdmin(MirrorAdmin):
    list_display = (
        "flashfx_id",
        "flashfx_status",
        "amount",
        "total_fee",
        "currency",
        "recipient_name",
        "reject_code",
        "flashfx_created_at",
        "anomaly",
    )
    list_filter = ("flashfx_status", "reject_code")
    search_fields = (*MirrorAdmin.search_fields, "external_reference", "recipient_name")
    date_hierarchy = "flashfx_created_at"


@admin.register(Payment)
class PaymentAdmin(MirrorAdmin):
    list_display = (
        "flashfx_id",
        "flashfx_status",
        "from_amount",
        "from_currency",
        "to_amount",
        "to_currency",
        "recipient_name",
        "flashfx_created_at",
    )
    list_filter = ("flashfx_status", "to_currency")
    date_hierarchy = "flashfx_created_at"


# Every mirror's change list exports its selection (payments/exports/admin.py).
offer_exports(
    DepositAdmin, WithdrawalAdmin, PaymentAdmin, SenderAdmin, RecipientAdmin, SubClientAdmin
)
