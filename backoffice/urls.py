from __future__ import annotations

from django.contrib import admin
from django.urls import path

from backoffice import views
from webhooks import views as webhook_views

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    path("admin/", admin.site.urls),
    # Both spellings: FlashFX counts a redirect as a failed delivery (API.md §4.2).
    path("webhooks/flashfx/", webhook_views.flashfx_webhook, name="flashfx-webhook"),
    path("webhooks/flashfx", webhook_views.flashfx_webhook),
]
