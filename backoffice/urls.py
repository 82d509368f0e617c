"""The project's URLconf: backoffice's own staff pages, then each app's routes (namespaced)."""

from __future__ import annotations

from django.contrib import admin
from django.urls import include, path

from . import reconciliation_views as reconciliation
from . import views
from .middleware import public

urlpatterns = [
    # First: FlashFX's receiver (webhooks/flashfx/, public, CSRF-exempt) is the busiest route,
    # and Django tries the patterns in order. Also webhooks/events/ (staff).
    path("webhooks/", include("webhooks.urls")),
    path("", views.dashboard, name="dashboard"),
    path("accounts/", include("backoffice.accounts_urls")),
    path("audit/", views.audit_trail, name="audit-trail"),
    path("healthz", public(views.healthz), name="healthz"),
    path("readyz", public(views.readyz), name="readyz"),
    # A bearer token, not a sign-in (backoffice/metrics.py); off without METRICS_TOKEN.
    path("metrics", public(views.metrics_page), name="metrics"),
    path("reconciliation/", reconciliation.overview, name="reconciliation"),
    path("reconciliation/run/", reconciliation.run_now, name="reconciliation-run"),
    path("reconciliation/reports/<int:pk>/", reconciliation.report, name="reconciliation-report"),
    path("reconciliation/items/<int:pk>/", reconciliation.item, name="reconciliation-item"),
    path(
        "reconciliation/items/<int:pk>/reapply/",
        reconciliation.item_reapply,
        name="reconciliation-item-reapply",
    ),
    path(
        "reconciliation/items/<int:pk>/resolve/",
        reconciliation.item_resolve,
        name="reconciliation-item-resolve",
    ),
    path("reconciliation/statement/", reconciliation.statement, name="reconciliation-statement"),
    path(
        "reconciliation/statement/fetch/",
        reconciliation.statement_fetch,
        name="reconciliation-statement-fetch",
    ),
    path("admin/", admin.site.urls),
    # deposits/, payouts/, payments/, exports/
    path("", include("payments.urls")),
    path("parties/", include("parties.urls")),
]
