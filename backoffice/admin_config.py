from __future__ import annotations

from django.contrib.admin.apps import AdminConfig


class StaffAdminConfig(AdminConfig):
    """The Django admin, served by StaffAdminSite (sign-in, OTP and the admin role)."""

    default_site = "backoffice.admin_site.StaffAdminSite"
