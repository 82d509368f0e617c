from __future__ import annotations

from django.contrib import admin
from django.urls import include, path
from social_django import views as social_views

from backoffice import accounts, views
from backoffice.middleware import public
from parties import views as party_views
from payments import views as payment_views
from webhooks import staff_views as webhook_staff_views
from webhooks import views as webhook_views

accounts_urls = [
    path("login/", public(accounts.StaffLoginView.as_view()), name="login"),
    path("logout/", accounts.sign_out, name="logout"),
    path("logout/everywhere/", accounts.sign_out_everywhere, name="logout-everywhere"),
    path("otp/", accounts.otp_verify, name="otp-verify"),
    path("otp/setup/", accounts.otp_setup, name="otp-setup"),
    path("backup-codes/", accounts.backup_codes, name="backup-codes"),
    path("step-up/", accounts.step_up, name="step-up"),
    path("sessions/", accounts.sessions, name="sessions"),
    # social-auth's own URLs (names social:begin, social:complete), 404 without Google set up.
    path(
        "social/login/<str:backend>/",
        public(accounts.google_only_when_configured(social_views.auth)),
    ),
    path(
        "social/complete/<str:backend>/",
        public(accounts.google_only_when_configured(social_views.complete)),
    ),
    path("social/", include("social_django.urls", namespace="social")),
]

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("accounts/", include(accounts_urls)),
    path("deposits/", payment_views.deposits, name="deposits"),
    path("payouts/", payment_views.payouts, name="payouts"),
    path("payments/", payment_views.payments, name="payments"),
    path("parties/", party_views.parties, name="parties"),
    path("webhooks/events/", webhook_staff_views.events, name="webhook-events"),
    path("exports/", payment_views.exports, name="exports"),
    path("audit/", views.audit_trail, name="audit"),
    path("healthz", public(views.healthz), name="healthz"),
    path("admin/", admin.site.urls),
    # Both spellings: FlashFX counts a redirect as a failed delivery (API.md §4.2).
    # FlashFX signs its requests (webhooks/receiving.py): no sign-in.
    path("webhooks/flashfx/", public(webhook_views.flashfx_webhook), name="flashfx-webhook"),
    path("webhooks/flashfx", public(webhook_views.flashfx_webhook)),
]
