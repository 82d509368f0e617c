"""The Django admin's exports of the mirrors: actions "Export selected as CSV / XLSX" on every
mirror's change list, through the same engine as the pages (escaping, masking, zone, audit).

The columns are the mirror's stored fields (model_columns); the rows are the admin's selection
(or every row its filters select, with "select all"). Above EXPORT_ASYNC_ROWS the admin asks
for a smaller selection: a background job re-reads its rows from a list's filters, and an admin
selection is not one (the list pages export any number of rows as a job).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import admin, messages
from django.db import models
from django.http import HttpRequest, HttpResponse, QueryDict

from ..views.exports import answer_export  # streams and audits as the pages' exports do
from . import formatting as f
from .jobs import DEFAULT_ZONE, EXPORT_PERMISSION, export_prepare
from .registry import Column, ExportList

SENSITIVE_FIELDS = frozenset(
    {"account_no", "sender_account_no", "recipient_account_no", "iban", "payid", "recipient_payid"}
)
LEFT_OUT = frozenset({"raw"})  # FlashFX's whole answer: the admin's change page shows it


def _kind(field: models.Field) -> str:
    if isinstance(field, models.DecimalField):
        return f.MONEY
    if isinstance(field, models.DateTimeField):
        return f.DATETIME
    if isinstance(field, models.DateField):
        return f.DATE
    if isinstance(field, models.BooleanField):
        return f.BOOL
    if isinstance(field, models.JSONField):
        return f.JSON
    if isinstance(field, models.GenericIPAddressField):
        return f.IP
    if isinstance(field, models.IntegerField | models.AutoField | models.ForeignKey):
        return f.NUMBER
    return f.TEXT


def model_columns(model: type[models.Model]) -> tuple[Column, ...]:
    """Every stored field of the model but LEFT_OUT, as columns (a foreign key as its id)."""
    columns = []
    for field in model._meta.concrete_fields:
        if field.name in LEFT_OUT:
            continue
        columns.append(
            Column(
                key=field.attname,
                label=str(field.verbose_name).capitalize(),
                source=field.attname,
                kind=_kind(field),
                sensitive=field.name in SENSITIVE_FIELDS,
                decimals=getattr(field, "decimal_places", None) or 2,
            )
        )
    return tuple(columns)


def _export(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: Any, fmt: str) -> Any:
    model = queryset.model
    entry = ExportList(
        name=f"admin:{model._meta.label_lower}",
        title=str(model._meta.verbose_name_plural).capitalize(),
        permission=f"{model._meta.app_label}.view_{model._meta.model_name}",
        url_name=f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist",
        filters=lambda query, user: {},
        rows=lambda filters, user: queryset,
        columns=model_columns(model),
    )
    count = queryset.count()
    if count > settings.EXPORT_ASYNC_ROWS:
        modeladmin.message_user(
            request,
            f"{count:,} rows selected: the admin exports at most {settings.EXPORT_ASYNC_ROWS:,}"
            " at once. Narrow the selection, or export the list from its page.",
            messages.ERROR,
        )
        return None
    changelist = QueryDict(request.GET.urlencode(), mutable=True)
    export = export_prepare(
        entry=entry,
        user=request.user,
        filters={"changelist": changelist.urlencode(), "selected": count},
        column_keys=[c.key for c in entry.columns],
        file_format=fmt,
        zone_name=request.session.get("export_zone", DEFAULT_ZONE),
        rows=queryset.order_by("pk"),
    )
    back = request.get_full_path()
    response: HttpResponse = answer_export(request, export, back=back)
    return response


@admin.action(description="Export selected as CSV", permissions=["export"])
def export_csv(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: Any) -> Any:
    return _export(modeladmin, request, queryset, "csv")


@admin.action(description="Export selected as XLSX", permissions=["export"])
def export_xlsx(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: Any) -> Any:
    return _export(modeladmin, request, queryset, "xlsx")


def _has_export_permission(self: admin.ModelAdmin, request: HttpRequest) -> bool:
    return request.user.has_perm(EXPORT_PERMISSION) and self.has_view_permission(request)


def offer_exports(*admin_classes: type[admin.ModelAdmin]) -> None:
    """Give these change lists the export actions (parties' admins too: parties may not import
    payments, so payments adds them)."""
    for cls in admin_classes:
        cls.actions = (*(cls.actions or ()), export_csv, export_xlsx)
        cls.has_export_permission = _has_export_permission  # type: ignore[attr-defined]
