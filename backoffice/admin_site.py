"""The Django admin behind the same rule as every staff page, and for admins only."""

from __future__ import annotations

from functools import update_wrapper

from django.contrib import admin
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme

from .roles import is_admin


class StaffAdminSite(admin.AdminSite):
    site_header = "FlashFX back-office administration"
    site_title = "FlashFX back-office"
    index_title = "Administration"
    site_url = "/"

    def has_permission(self, request: HttpRequest) -> bool:
        user = request.user
        return bool(user.is_active and user.is_verified() and is_admin(user))

    def admin_view(self, view, cacheable: bool = False):
        """A signed-in member without the admin role gets 403 at once, not a sign-in redirect."""
        inner = super().admin_view(view, cacheable)

        def guarded(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            if request.user.is_authenticated and not self.has_permission(request):
                raise PermissionDenied("The admin is for the admin role.")
            return inner(request, *args, **kwargs)

        return update_wrapper(guarded, inner)

    def login(self, request: HttpRequest, extra_context: dict | None = None) -> HttpResponse:
        """No second door: the admin's sign-in is the staff sign-in (password or Google, then OTP);
        a signed-in member without the admin role is refused, not sent round in a loop."""
        if self.has_permission(request):  # already in: on to where they were going
            target = request.GET.get("next", "")
            if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
                target = reverse("admin:index", current_app=self.name)
            return HttpResponseRedirect(target)
        if request.user.is_authenticated:
            raise PermissionDenied("The admin is for the admin role.")
        return redirect_to_login(request.GET.get("next") or self.site_url)
