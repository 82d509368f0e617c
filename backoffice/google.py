"""Google sign-in (social-auth): only for accounts an admin created, in the allowed domains.

social-core has already refused an unverified email (email_verified must be true). The steps
here run before anything is linked: the email's domain and the Workspace domain Google vouches
for (`hd`) must both be in GOOGLE_ALLOWED_DOMAINS, and the email must belong to exactly one
active staff account; nobody is ever created. Then the OTP step follows, as for a password.
Refusals carry the address tried; GoogleSignInErrorMiddleware audits them and shows a message.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from social_core.exceptions import AuthPolicyError


class GoogleRefusal(AuthPolicyError):
    def __init__(self, backend, detail: str, *, email: str) -> None:
        super().__init__(backend, detail, stage="pipeline")
        self.email = email


class NoStaffAccount(GoogleRefusal):
    """Signed in at Google, but no staff account here has that address."""


class EmailDomainNotAllowed(GoogleRefusal):
    """The address is not in one of GOOGLE_ALLOWED_DOMAINS."""


class DomainNotAllowed(GoogleRefusal):
    """Google does not vouch for the account as one of GOOGLE_ALLOWED_DOMAINS' Workspace (`hd`)."""


def _email(details: dict[str, Any]) -> str:
    return (details.get("email") or "").strip()


def allowed_domains_only(
    backend, details: dict[str, Any], response: dict[str, Any], *args, **kwargs
):
    email = _email(details)
    domain = email.rpartition("@")[2].lower()
    if not email or domain not in settings.GOOGLE_ALLOWED_DOMAINS:
        raise EmailDomainNotAllowed(backend, f"domain {domain!r} is not allowed", email=email)
    hosted_domain = str(response.get("hd") or "").lower()
    if hosted_domain not in settings.GOOGLE_ALLOWED_DOMAINS:
        raise DomainNotAllowed(
            backend, f"hosted domain {hosted_domain!r} is not allowed", email=email
        )


def existing_staff_only(
    backend, details: dict[str, Any], response: dict[str, Any], user=None, *args, **kwargs
) -> dict[str, Any]:
    email = _email(details)
    matches = list(get_user_model().objects.filter(email__iexact=email, is_active=True)[:2])
    if not email or len(matches) != 1 or (user is not None and user.pk != matches[0].pk):
        raise NoStaffAccount(backend, "no staff account has this address", email=email)
    return {"user": matches[0], "is_new": False}
