"""The project's URLconf: backoffice's own staff pages, then each app's routes (namespaced)."""

from __future__ import annotations

from django.contrib import admin
from django.urls import include, path

from . import views
from .middleware import public

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("accounts/", include("backoffice.accounts_urls")),
    path("audit/", views.audit_trail, name="audit-trail"),
    path("healthz", public(views.healthz), name="healthz"),
    path("readyz", public(views.readyz), name="readyz"),
    # A bearer token, not a sign-in (backoffice/metrics.py); off without METRICS_TOKEN.
    path("metrics", public(views.metrics_page), name="metrics"),
    path("admin/", admin.site.urls),
    # deposits/, payouts/, payments/, exports/
    path("", include("payments.urls")),
    path("parties/", include("parties.urls")),
    # webhooks/events/ (staff) and FlashFX's receiver webhooks/flashfx/ (public, CSRF-exempt)
    path("webhooks/", include("webhooks.urls")),
]
