"""Sign-in, the second factor, step-up and sessions, under /accounts/.

Not namespaced, like django.contrib.auth.urls: settings name them (LOGIN_URL = "login",
SOCIAL_AUTH_LOGIN_REDIRECT_URL = "otp-verify"), and social-auth reverses "social:complete".
"""

from __future__ import annotations

from django.urls import include, path
from social_django import views as social_views

from . import accounts
from .middleware import public

urlpatterns = [
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
