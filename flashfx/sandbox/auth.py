"""Login, JWTs and logout (docs/flashfx.md §1.2, §1.3; decisions §5.7-§5.10)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import jwt
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from . import conf
from .errors import BusinessFailure, Unauthenticated
from .models import ApiUser, LoginThrottle, RevokedToken


class LoginThrottled(Exception):
    """A second login for the same email within the interval: HTTP 429 (decision §5.9)."""


@dataclass(frozen=True)
class Session:
    user: ApiUser
    jti: str
    expires_at: int


def hash_password(password: str, salt: str | None = None) -> str:
    """scrypt: slow enough for a password, fast enough for a test suite that logs in often."""
    salt = salt or secrets.token_hex(16)
    n = settings.SANDBOX_PASSWORD_SCRYPT_N  # 2**14 unless a test run asks for less
    digest = hashlib.scrypt(password.encode(), salt=bytes.fromhex(salt), n=n, r=8, p=1).hex()
    return f"scrypt${salt}${digest}"


def check_password(password: str, stored: str) -> bool:
    _, salt, _ = stored.split("$")
    return hmac.compare_digest(hash_password(password, salt), stored)


def ensure_api_user() -> ApiUser:
    """The API member from SANDBOX_API_EMAIL / SANDBOX_API_PASSWORD; follows changes to them."""
    config = conf.get_config()
    user = ApiUser.objects.filter(email=config["api_email"]).first()
    if user is None:
        return ApiUser.objects.create(
            email=config["api_email"],
            password_hash=hash_password(config["api_password"]),
            affiliations=["FP_AUS"],
        )
    if not check_password(config["api_password"], user.password_hash):
        user.password_hash = hash_password(config["api_password"])
        user.save(update_fields=["password_hash"])
    return user


def _throttle(email: str) -> None:
    """At most one login attempt per interval per email, whatever its outcome (§1.2, §5.9)."""
    now = timezone.now()
    interval = timedelta(seconds=conf.get_config()["login_interval_seconds"])
    with transaction.atomic():
        if LoginThrottle.objects.filter(email=email, last_attempt_at__lte=now - interval).update(
            last_attempt_at=now
        ):
            return
        try:
            with transaction.atomic():
                LoginThrottle.objects.create(email=email, last_attempt_at=now)
        except IntegrityError:
            raise LoginThrottled(email) from None


def login(email: str, password: str, affiliation: str | None) -> str:
    email = email.strip().lower()
    _throttle(email)
    user = ApiUser.objects.filter(email=email).first()
    if user is None or not check_password(password, user.password_hash):
        raise BusinessFailure("INVALID_CREDENTIALS", "Invalid email or password")
    if affiliation is None and len(user.affiliations) > 1:
        raise BusinessFailure(
            "NEED_AFFILIATION", "This user has several affiliations; say which one"
        )
    if affiliation is not None and affiliation not in user.affiliations:
        raise BusinessFailure("UNREGISTERED", f"No account for affiliation {affiliation}")
    issued = int(timezone.now().timestamp())
    ttl = int(conf.get_config()["token_ttl_seconds"])
    claims = {
        "sub": user.id,
        "email": user.email,
        "iat": issued,
        "exp": issued + ttl,
        "jti": secrets.token_hex(16),
    }
    return jwt.encode(claims, settings.SECRET_KEY, algorithm="HS256")


def authenticate(authorization: str | None) -> Session:
    """The session behind an `authorization: Bearer <JWT>` header, or Unauthenticated (§5.8)."""
    if not authorization:
        raise Unauthenticated(
            "Missing authorization header: log in and send 'authorization: Bearer <token>'"
        )
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("The authorization header must be 'Bearer <token>'")
    try:
        claims = jwt.decode(
            token.strip(),
            settings.SECRET_KEY,
            algorithms=["HS256"],
            options={"require": ["exp", "iat", "sub", "jti"]},
        )
    except jwt.ExpiredSignatureError:
        raise Unauthenticated("Token expired: log in again") from None
    except jwt.InvalidTokenError:
        raise Unauthenticated("Invalid token") from None
    if RevokedToken.objects.filter(jti=claims["jti"]).exists():
        raise Unauthenticated("Token revoked by logout: log in again")
    user = ApiUser.objects.filter(pk=claims["sub"]).first()
    if user is None:
        raise Unauthenticated("Unknown user")
    return Session(user=user, jti=claims["jti"], expires_at=claims["exp"])


def logout(session: Session) -> None:
    expires_at = datetime.fromtimestamp(session.expires_at, tz=UTC)
    RevokedToken.objects.get_or_create(jti=session.jti, defaults={"expires_at": expires_at})
    RevokedToken.objects.filter(expires_at__lt=timezone.now()).delete()
