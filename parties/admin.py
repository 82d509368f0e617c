from __future__ import annotations

from django.contrib import admin

from mirrors.admin import MirrorAdmin

from .models import Recipient, Sender, SubClient


@admin.register(Sender)
class SenderAdmin(MirrorAdmin):
    list_display = ("flashfx_id", "name", "email", "country", "external_id", "flashfx_created_at")
    search_fields = (*MirrorAdmin.search_fields, "first_name", "last_name", "company_name", "email")


@admin.register(Recipient)
class RecipientAdmin(MirrorAdmin):
    list_display = (
        "flashfx_id",
        "display_name",
        "account_id_type",
        "currency",
        "bsb",
        "account_no",
        "country",
    )
    list_filter = ("account_id_type", "currency")
    search_fields = (*MirrorAdmin.search_fields, "display_name", "account_no", "iban", "payid")


@admin.register(SubClient)
class SubClientAdmin(MirrorAdmin):
    list_display = (
        "flashfx_id",
        "full_name",
        "flashfx_status",
        "client_type",
        "bsb",
        "account_no",
        "anomaly",
    )
    list_filter = ("flashfx_status", "client_type")
    search_fields = (*MirrorAdmin.search_fields, "full_name", "account_no")
