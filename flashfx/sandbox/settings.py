"""Django settings of the sandbox process (never of the back-office).

Every knob comes from the environment with a default fit for local development; the knobs that
tests and demos change at run time (delays, token lifetime, webhook target, faults) can also be
changed through ``POST /_sandbox/config`` and ``POST /_sandbox/faults`` (see conf.py).
"""

from __future__ import annotations

import os
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parents[2]
VAR_DIR = Path(os.environ.get("VAR_DIR") or BASE_DIR / "var")


def _float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return float(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a number, got {raw!r}") from None


DB_PATH = Path(os.environ.get("SANDBOX_DB_PATH") or VAR_DIR / "sandbox.sqlite3")
DB_PATH.parent.mkdir(parents=True, exist_ok=True)

# scrypt's cost N for the API user's password hash (a power of two). Keep the default: it is
# the point of hashing. A test knob: the test suite logs in and resets a few hundred times,
# and N=2**14 costs ~50 ms of CPU per check, twice per test (tests/conftest.py sets 2**4).
SANDBOX_PASSWORD_SCRYPT_N = int(_float("SANDBOX_PASSWORD_SCRYPT_N", 2**14))
if SANDBOX_PASSWORD_SCRYPT_N < 2 or SANDBOX_PASSWORD_SCRYPT_N & (SANDBOX_PASSWORD_SCRYPT_N - 1):
    raise ImproperlyConfigured("SANDBOX_PASSWORD_SCRYPT_N must be a power of two, at least 2")

# Signs the sandbox's JWTs. Not a secret of anything real: the sandbox only ever runs locally.
SECRET_KEY = os.environ.get("SANDBOX_JWT_SECRET") or "sandbox-jwt-signing-key-local-only"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "[::1]", "testserver"] + [
    h for h in os.environ.get("SANDBOX_ALLOWED_HOSTS", "").split(",") if h
]
INSTALLED_APPS = ["flashfx.sandbox"]
MIDDLEWARE: list[str] = []  # no CommonMiddleware: the API lives at "/" and must never redirect
ROOT_URLCONF = "flashfx.sandbox.urls"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {"context_processors": []},
    }
]
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": str(DB_PATH),
        # The server threads and the clock threads write concurrently: WAL lets readers go on,
        # IMMEDIATE makes writers queue for the lock at BEGIN instead of failing mid-way.
        "OPTIONS": {
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
        },
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True
TIME_ZONE = "UTC"
DATA_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024

# Defaults of the run-time configuration (conf.py); POST /_sandbox/config overrides them.
SANDBOX_DEFAULTS = {
    "api_email": os.environ.get("SANDBOX_API_EMAIL") or "api@sandbox.local",
    "api_password": os.environ.get("SANDBOX_API_PASSWORD") or "sandbox-password",
    "token_ttl_seconds": _float("SANDBOX_TOKEN_TTL", 4 * 3600),
    "login_interval_seconds": _float("SANDBOX_LOGIN_INTERVAL", 1.0),
    # Every automatic state change (deposit clears, payout is sent, ...) waits this long.
    "step_delay_seconds": _float("SANDBOX_STEP_DELAY", 3.0),
    "withdrawal_fee": os.environ.get("SANDBOX_WITHDRAWAL_FEE") or "1.00",
    "deposit_fee": os.environ.get("SANDBOX_DEPOSIT_FEE") or "0.00",
    "webhook_url": os.environ.get("SANDBOX_WEBHOOK_URL", "http://127.0.0.1:8000/webhooks/flashfx/"),
    "webhook_secret": os.environ.get("FLASHFX_WEBHOOK_SECRET") or "sandbox-webhook-secret",
    "adhoc_webhook_secret": os.environ.get("SANDBOX_ADHOC_WEBHOOK_SECRET")
    or "sandbox-adhoc-secret",
    # 1.0 = FlashFX's 6 s, 60 s, 600 s between attempts; tests use a small fraction.
    "webhook_retry_scale": _float("SANDBOX_WEBHOOK_RETRY_SCALE", 1.0),
    "webhook_timeout_seconds": _float("SANDBOX_WEBHOOK_TIMEOUT", 10.0),
    # Confirmation of Payee (docs/flashfx.md §3.13.2, decision §5.46): off answers
    # COP_API_DISABLED; a limit > 0 caps the billable checks per calendar month (UTC).
    "cop_enabled": True,
    "cop_monthly_limit": 0,
}
# How often the clock threads look for due state changes and webhook deliveries (0 = never;
# then only POST /_sandbox/clock/tick moves time on).
SANDBOX_CLOCK_INTERVAL = _float("SANDBOX_CLOCK_INTERVAL", 0.2)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s sandbox %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("SANDBOX_LOG_LEVEL", "INFO")},
    # webhooks.py logs each attempt with its outcome; httpx's own line would repeat it.
    "loggers": {"httpx": {"level": "WARNING"}},
}
