"""The only settings file. Every knob comes from the environment (see README.md).

With DEBUG=true and nothing else set, everything runs locally: SQLite under var/, the
FlashFX sandbox at http://127.0.0.1:8001/ and Celery on kombu's filesystem broker.
With DEBUG off, missing secrets stop start-up with one message naming all of them.
"""

from __future__ import annotations

import ipaddress
import logging
import os
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path

import dj_database_url
from celery.schedules import crontab
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

_missing: list[str] = []  # required variables not set; reported together at the end


def env_bool(name: str, *, default: bool) -> bool:
    raw = os.environ.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in ("true", "1"):
        return True
    if raw in ("false", "0"):
        return False
    raise ImproperlyConfigured(f"{name} must be true or false (or 1/0), not {raw!r}")


def env_str(name: str, *, default: str | None = None, dev_default: str | None = None) -> str:
    """The contents of the file named by NAME_FILE, else NAME, else a default.

    `default` applies always, `dev_default` only with DEBUG on; with neither the variable
    is required and is recorded in `_missing`.
    """
    value = os.environ.get(name, "")
    if path := os.environ.get(f"{name}_FILE"):
        try:
            value = Path(path).read_text().strip()
        except OSError as exc:
            raise ImproperlyConfigured(f"{name}_FILE={path} cannot be read: {exc}") from exc
    if value:  # an empty value counts as unset
        return value
    if default is not None:
        return default
    if DEBUG and dev_default is not None:
        return dev_default
    _missing.append(name)
    return ""


def env_int(name: str, *, default: int) -> int:
    raw = env_str(name, default=str(default))
    try:
        return int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer, not {raw!r}") from None


def env_float(name: str, *, default: float) -> float:
    raw = env_str(name, default=str(default))
    try:
        return float(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a number, not {raw!r}") from None


def env_datetime(name: str, *, default: str) -> datetime:
    """An ISO-8601 time with its offset (or Z), as an aware datetime."""
    raw = env_str(name, default=default)
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an ISO-8601 time, not {raw!r}") from None
    if value.tzinfo is None:
        raise ImproperlyConfigured(f"{name} needs a UTC offset or Z: {raw!r}")
    return value


def env_list(name: str, *, default: str | None = None, dev_default: str | None = None) -> list[str]:
    """Comma-separated values; blanks are dropped."""
    raw = env_str(name, default=default, dev_default=dev_default)
    return [item.strip() for item in raw.split(",") if item.strip()]


DEBUG = env_bool("DEBUG", default=False)  # make run and make test set DEBUG=true
SECRET_KEY = env_str("SECRET_KEY", dev_default="dev-only-not-secret")
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", dev_default="127.0.0.1,localhost")

VAR_DIR = Path(env_str("VAR_DIR", default=str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)

# FlashFX. The URL alone picks the local sandbox or UAT/production.
FLASHFX_API_URL = env_str("FLASHFX_API_URL", dev_default="http://127.0.0.1:8001/")
FLASHFX_EMAIL = env_str("FLASHFX_EMAIL", dev_default="api@sandbox.local")
FLASHFX_PASSWORD = env_str("FLASHFX_PASSWORD", dev_default="sandbox-password")
FLASHFX_WEBHOOK_SECRET = env_str("FLASHFX_WEBHOOK_SECRET", dev_default="sandbox-webhook-secret")
# Also accepted while a rotated secret is phased out.
FLASHFX_WEBHOOK_SECRET_PREVIOUS = env_str("FLASHFX_WEBHOOK_SECRET_PREVIOUS", default="")
FLASHFX_CONNECT_TIMEOUT = env_float("FLASHFX_CONNECT_TIMEOUT", default=5.0)
FLASHFX_READ_TIMEOUT = env_float("FLASHFX_READ_TIMEOUT", default=30.0)
# How long a query keeps retrying (backoff with jitter) before FlashFXUnavailable is raised.
FLASHFX_QUERY_RETRY_BUDGET_SECONDS = env_float("FLASHFX_QUERY_RETRY_BUDGET_SECONDS", default=15.0)
# The Redis key of the shared FlashFX token (with REDIS_URL). Keep the default in production:
# every process must share one token. A test knob: the suite's parallel workers each talk to
# their own sandbox, so tests/conftest.py gives each worker its own key.
FLASHFX_TOKEN_KEY = env_str("FLASHFX_TOKEN_KEY", default="flashfx:token")

# Sync and reconciliation (mirrors/sync.py, mirrors/reconcile.py).
FLASHFX_SYNC_EPOCH = env_datetime(
    "FLASHFX_SYNC_EPOCH", default="2018-01-01T00:00:00Z"
)  # first backfill
FLASHFX_SYNC_WINDOW_MAX_ROWS = env_int("FLASHFX_SYNC_WINDOW_MAX_ROWS", default=1000)  # then split
FLASHFX_SYNC_FIRST_WINDOW_HOURS = env_float("FLASHFX_SYNC_FIRST_WINDOW_HOURS", default=24.0)
FLASHFX_SYNC_OVERLAP_SECONDS = env_int("FLASHFX_SYNC_OVERLAP_SECONDS", default=300)
FLASHFX_SYNC_OPEN_LOOKBACK_DAYS = env_int("FLASHFX_SYNC_OPEN_LOOKBACK_DAYS", default=45)
FLASHFX_SYNC_INTERVAL_SECONDS = env_int("FLASHFX_SYNC_INTERVAL_SECONDS", default=300)
FLASHFX_RECONCILE_DAYS = env_int("FLASHFX_RECONCILE_DAYS", default=7)
# Beat reads FlashFX's balances this often (mirrors.tasks.snapshot_balances): the dashboard
# shows the last reading and draws them over time; it never calls FlashFX itself.
FLASHFX_BALANCE_SNAPSHOT_SECONDS = env_int("FLASHFX_BALANCE_SNAPSHOT_SECONDS", default=900)

# Inbound webhooks (webhooks/).
FLASHFX_WEBHOOK_MAX_BODY_BYTES = env_int("FLASHFX_WEBHOOK_MAX_BODY_BYTES", default=1024 * 1024)
# How many reverse proxies in front of us append to X-Forwarded-For (0: use REMOTE_ADDR).
FLASHFX_WEBHOOK_TRUSTED_PROXIES = env_int("FLASHFX_WEBHOOK_TRUSTED_PROXIES", default=0)
# Source allow-list: CIDRs, or "uat" / "production" for FlashFX's published addresses; empty = off.
FLASHFX_WEBHOOK_ALLOWED_IPS = env_list("FLASHFX_WEBHOOK_ALLOWED_IPS", default="")
for _entry in FLASHFX_WEBHOOK_ALLOWED_IPS:
    if _entry.lower() not in ("uat", "production"):
        try:
            ipaddress.ip_network(_entry, strict=False)
        except ValueError:
            raise ImproperlyConfigured(
                f"FLASHFX_WEBHOOK_ALLOWED_IPS: {_entry!r} is not a CIDR, 'uat' or 'production'"
            ) from None
FLASHFX_WEBHOOK_RETENTION_DAYS = env_int("FLASHFX_WEBHOOK_RETENTION_DAYS", default=30)
FLASHFX_WEBHOOK_SILENCE_MINUTES = env_int("FLASHFX_WEBHOOK_SILENCE_MINUTES", default=30)
# Requests refused before they prove to come from FlashFX (no or a bad signature, an address
# off the allow-list, too large): at most this many rows per source address and minute (the
# rest are answered the same, and counted), each with only the first bytes of its body.
FLASHFX_WEBHOOK_QUARANTINE_PER_MINUTE = env_int("FLASHFX_WEBHOOK_QUARANTINE_PER_MINUTE", default=60)
FLASHFX_WEBHOOK_QUARANTINE_BODY_BYTES = env_int(
    "FLASHFX_WEBHOOK_QUARANTINE_BODY_BYTES", default=1024
)

# Deposits (payments/services/): a rejection (refund) above this amount, in this currency, needs
# a second member's approval; in any other currency it always does. Approvals not decided
# within APPROVAL_TTL_HOURS expire. COMPANY_NAMES are the company's own names (legal and trading,
# comma-separated): a deposit from a payer named neither so nor as the sub-client paid to is
# marked third-party.
_threshold = env_str("DEPOSIT_REFUND_APPROVAL_THRESHOLD", default="10000.00")
DEPOSIT_REFUND_APPROVAL_CURRENCY = env_str("DEPOSIT_REFUND_APPROVAL_CURRENCY", default="AUD")
try:
    DEPOSIT_REFUND_APPROVAL_THRESHOLD = Decimal(_threshold)
    if not DEPOSIT_REFUND_APPROVAL_THRESHOLD.is_finite() or DEPOSIT_REFUND_APPROVAL_THRESHOLD < 0:
        raise InvalidOperation
except InvalidOperation:
    raise ImproperlyConfigured(
        "DEPOSIT_REFUND_APPROVAL_THRESHOLD must be an amount >= 0, e.g. 10000.00, "
        f"not {_threshold!r}"
    ) from None
APPROVAL_TTL_HOURS = env_int("APPROVAL_TTL_HOURS", default=24)
COMPANY_NAMES = env_list("COMPANY_NAMES", default="Demo Company Pty Ltd" if DEBUG else "")
# How often an open deposit queue asks for new arrivals, and an open deposit page for news of
# its refund (seconds; 0 turns the polling off).
DEPOSIT_QUEUE_POLL_SECONDS = env_int("DEPOSIT_QUEUE_POLL_SECONDS", default=10)
DEPOSIT_PAGE_POLL_SECONDS = env_int("DEPOSIT_PAGE_POLL_SECONDS", default=3)
# Payouts (payments/services/payout_policy.py): approvers by amount, e.g. "10000.00:1,*:2" (up
# to AUD 10,000.00 one approver, above two); a payout not approved within
# PAYOUT_APPROVAL_TTL_HOURS expires; an open payout page asks for news every few seconds.
PAYOUT_APPROVAL_TIERS = env_str("PAYOUT_APPROVAL_TIERS", default="10000.00:1,*:2")
PAYOUT_APPROVAL_TTL_HOURS = env_int("PAYOUT_APPROVAL_TTL_HOURS", default=24)
PAYOUT_PAGE_POLL_SECONDS = env_int("PAYOUT_PAGE_POLL_SECONDS", default=3)
# A worker sending a payout takes up to this many approved payouts together: one claim, then
# one call each, then one record of the answers (payments/services/payouts.py: payouts_send).
PAYOUT_SEND_GROUP = env_int("PAYOUT_SEND_GROUP", default=20)
# Batch payout files (payments/services/batch_file.py, docs/batch-payouts.md): at most this many
# payouts (data rows) in one file, and a file no larger than this many bytes.
BATCH_MAX_ROWS = env_int("BATCH_MAX_ROWS", default=1000)
BATCH_MAX_FILE_BYTES = env_int("BATCH_MAX_FILE_BYTES", default=5 * 1024 * 1024)
# An approved batch is sent by up to this many tasks at once, each feeding the payout pipeline
# a group (PAYOUT_SEND_GROUP) at a time: enough for every worker to share the work
# (payments/tasks.py: payout_batch_send); an open batch page asks for progress this often.
BATCH_SEND_TASKS = env_int("BATCH_SEND_TASKS", default=4)
BATCH_PAGE_POLL_SECONDS = env_int("BATCH_PAGE_POLL_SECONDS", default=2)

# Exports (payments/exports/): more rows than EXPORT_ASYNC_ROWS run as a job whose file, under
# EXPORT_DIR, its owner downloads for EXPORT_RETENTION_HOURS; XLSX stops below Excel's
# 1,048,576 rows at EXPORT_XLSX_MAX_ROWS; the jobs page asks for progress this often.
EXPORT_ASYNC_ROWS = env_int("EXPORT_ASYNC_ROWS", default=100_000)
EXPORT_RETENTION_HOURS = env_int("EXPORT_RETENTION_HOURS", default=24)
EXPORT_DIR = Path(env_str("EXPORT_DIR", default=str(VAR_DIR / "exports")))
EXPORT_XLSX_MAX_ROWS = env_int("EXPORT_XLSX_MAX_ROWS", default=1_000_000)
EXPORT_PAGE_POLL_SECONDS = env_int("EXPORT_PAGE_POLL_SECONDS", default=2)

# Parties (parties/): a new recipient, or one whose bank details changed, is flagged on every
# payout to it for this many hours (parties.selectors.recipient_cooling_until).
PAYOUT_NEW_RECIPIENT_COOLING_HOURS = env_int("PAYOUT_NEW_RECIPIENT_COOLING_HOURS", default=24)

# Staff sign-in (backoffice/accounts.py): password or Google, then always a TOTP code.
STAFF_IDLE_TIMEOUT_SECONDS = env_int("STAFF_IDLE_TIMEOUT_SECONDS", default=15 * 60)
STAFF_SESSION_LIFETIME_SECONDS = env_int("STAFF_SESSION_LIFETIME_SECONDS", default=10 * 60 * 60)
# Money actions ask for a fresh code when the last one is older than this.
STAFF_STEP_UP_MAX_AGE_SECONDS = env_int("STAFF_STEP_UP_MAX_AGE_SECONDS", default=5 * 60)
# Failed passwords and codes allowed per username from one address, then locked for a while.
STAFF_SIGN_IN_FAILURE_LIMIT = env_int("STAFF_SIGN_IN_FAILURE_LIMIT", default=5)
STAFF_LOCKOUT_MINUTES = env_int("STAFF_LOCKOUT_MINUTES", default=15)
# Reverse proxies in front of the app that append to X-Forwarded-For (0: use REMOTE_ADDR).
STAFF_TRUSTED_PROXIES = env_int("STAFF_TRUSTED_PROXIES", default=0)
STAFF_BACKUP_CODES = 10
# The audit trail's chain is an HMAC with this key: whoever can write to the database but does
# not hold the key cannot rebuild the chain after editing it. Keep it outside the database.
AUDIT_HMAC_KEY = env_str("AUDIT_HMAC_KEY", dev_default="dev-only-audit-key")

GOOGLE_OAUTH2_KEY = env_str("GOOGLE_OAUTH2_KEY", default="")
GOOGLE_OAUTH2_SECRET = env_str("GOOGLE_OAUTH2_SECRET", default="")
GOOGLE_ALLOWED_DOMAINS = [d.lower() for d in env_list("GOOGLE_ALLOWED_DOMAINS", default="")]
GOOGLE_SIGN_IN = bool(GOOGLE_OAUTH2_KEY and GOOGLE_OAUTH2_SECRET)
if bool(GOOGLE_OAUTH2_KEY) != bool(GOOGLE_OAUTH2_SECRET):
    raise ImproperlyConfigured("GOOGLE_OAUTH2_KEY and GOOGLE_OAUTH2_SECRET go together")
if GOOGLE_SIGN_IN and not GOOGLE_ALLOWED_DOMAINS:
    raise ImproperlyConfigured(
        "Google sign-in needs GOOGLE_ALLOWED_DOMAINS (the staff's Google Workspace domains)"
    )

INSTALLED_APPS = [
    "backoffice.admin_config.StaffAdminConfig",  # django.contrib.admin behind sign-in, OTP and the admin role
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "backoffice",  # before staticfiles: its runserver answers 404 for /static/../ paths
    "django.contrib.staticfiles",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "social_django",
    "axes",
    "csp",
    "django_htmx",
    "mirrors",
    "parties",
    "payments",
    "webhooks",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Static files from the app itself (gunicorn in production): hashed names cached for a year,
    # served gzip-compressed; before everything else, so they skip sessions and sign-in.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "backoffice.log.RequestIdMiddleware",  # X-Request-ID, on every log record of the request
    "backoffice.metrics.MetricsMiddleware",  # /metrics: requests by route and status, timed
    "backoffice.middleware.NoStoreMiddleware",  # Cache-Control: no-store on every answer
    "csp.middleware.CSPMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",  # request.user.is_verified()
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "backoffice.middleware.AuditContextMiddleware",  # who and from where, for audit rows
    "backoffice.middleware.SessionLifetimeMiddleware",  # idle timeout and absolute lifetime
    "backoffice.middleware.StaffOnlyMiddleware",  # nothing past sign-in + OTP but public paths
    "backoffice.middleware.GoogleSignInErrorMiddleware",
    "axes.middleware.AxesMiddleware",  # last: swaps in the lockout answer
]

ROOT_URLCONF = "backoffice.urls"
WSGI_APPLICATION = "backoffice.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "backoffice.context_processors.staff",
            ],
        },
    },
]

if DATABASE_URL := env_str("DATABASE_URL", default=""):
    DATABASES = {
        "default": dj_database_url.parse(DATABASE_URL, conn_max_age=60, conn_health_checks=True)
    }
    # One test database per test run, so that two runs on one machine never drop each other's.
    DATABASES["default"]["TEST"] = {"NAME": f"test_{DATABASES['default']['NAME']}_{os.getpid()}"}
    # psycopg prepares a statement a connection runs often (from its 5th run) on the cursors
    # that bind on the server (mirrors/insert.py bound_cursor: the webhook receiver's INSERT);
    # Django's own cursors never do. A pooler that hands one connection to many clients per
    # transaction (PgBouncer before 1.21 in transaction mode) loses them: turn it off there.
    if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
        DATABASES["default"].setdefault("OPTIONS", {})["prepare_threshold"] = (
            5 if env_bool("DATABASE_PREPARED_STATEMENTS", default=True) else None
        )
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": VAR_DIR / "db.sqlite3",
            "OPTIONS": {
                # WAL lets the web server and the worker read while one writes; IMMEDIATE
                # takes the write lock at BEGIN, so busy_timeout applies instead of failing
                # with "database is locked" when a read transaction later tries to write.
                "init_command": (
                    "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=5000;"
                ),
                "transaction_mode": "IMMEDIATE",
            },
            # A file, not Django's shared-cache in-memory default, so that tests with threads
            # see the same locking (busy_timeout, WAL) as the real embedded database.
            "TEST": {"NAME": str(VAR_DIR / f"test_db_{os.getpid()}.sqlite3")},  # one per run
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env_str("REDIS_URL", default="")
if REDIS_URL:
    CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# How a received webhook reaches the worker. "coalesced" (with Redis): a request publishes a
# drain task only when none is already queued (one Redis SET NX), and the drain processes every
# waiting event; "per-event": one Celery message per event, published in the request.
FLASHFX_WEBHOOK_HANDOFF = env_str(
    "FLASHFX_WEBHOOK_HANDOFF", default="coalesced" if REDIS_URL else "per-event"
)
if FLASHFX_WEBHOOK_HANDOFF not in ("coalesced", "per-event"):
    raise ImproperlyConfigured("FLASHFX_WEBHOOK_HANDOFF must be 'coalesced' or 'per-event'")
if FLASHFX_WEBHOOK_HANDOFF == "coalesced" and not REDIS_URL:
    raise ImproperlyConfigured("FLASHFX_WEBHOOK_HANDOFF=coalesced needs REDIS_URL")

# /readyz (backoffice/readiness.py): beat schedules a heartbeat task this often, and the check
# fails when the last one ran longer ago than READY_BEAT_STALE_SECONDS.
READY_HEARTBEAT_SECONDS = env_int("READY_HEARTBEAT_SECONDS", default=30)
READY_BEAT_STALE_SECONDS = env_int("READY_BEAT_STALE_SECONDS", default=180)
# /metrics (backoffice/metrics.py) answers only `Authorization: Bearer <METRICS_TOKEN>`; unset,
# it is off (404). A long random string, given to the Prometheus that scrapes it.
METRICS_TOKEN = env_str("METRICS_TOKEN", default="")

# Celery: Redis when REDIS_URL is set, else kombu's filesystem transport (no server needed).
CELERY_BROKER_URL = REDIS_URL or "filesystem://"
if REDIS_URL:
    # An unacknowledged task (acks_late) whose worker died comes back after visibility_timeout
    # (plus kombu's restore sweep, about 100 s more), and so does one merely running or
    # waiting (ETA/countdown) longer than it. 15 minutes: longer than any countdown we
    # schedule (at most 600 s) and than any task runs (a FlashFX call is at most connect +
    # read timeout), so nothing runs twice merely for being slow or delayed; short enough
    # that a payout whose worker died is sent within minutes. The payouts sweep (2 minutes)
    # is the faster backstop, and running twice is harmless anyway: the outbox claim and the
    # look-up by externalId (payments/services/payouts.py).
    CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, str | int] = {"visibility_timeout": 900}
else:
    _celery_dir = VAR_DIR / "celery"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_celery_dir / "queue"),
        "data_folder_out": str(_celery_dir / "queue"),
        "processed_folder": str(_celery_dir / "processed"),
        "control_folder": str(_celery_dir / "control"),  # kombu's default is ./control
    }
    for _folder in CELERY_BROKER_TRANSPORT_OPTIONS.values():
        Path(_folder).mkdir(parents=True, exist_ok=True)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_ACKS_LATE = True  # a task is acknowledged after it ran, so tasks must be idempotent
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1  # with late acks, don't hold tasks another worker could run
# Celery's Django fixup closes the database connection around every task unless this is set;
# then it closes it every this many tasks only, and backoffice/celery.py applies
# CONN_MAX_AGE and CONN_HEALTH_CHECKS around each task as Django does around each request.
CELERY_DB_REUSE_MAX = 1000
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_BEAT_SCHEDULE: dict[str, dict[str, object]] = {
    "flashfx-sync": {
        "task": "mirrors.tasks.sync_flashfx",
        "schedule": float(FLASHFX_SYNC_INTERVAL_SECONDS),
    },
    "flashfx-balances": {
        "task": "mirrors.tasks.snapshot_balances",
        "schedule": float(FLASHFX_BALANCE_SNAPSHOT_SECONDS),
    },
    "flashfx-reconcile-nightly": {
        "task": "mirrors.tasks.reconcile_flashfx",
        "schedule": crontab(hour=3, minute=15),  # after FlashFX's day has settled (UTC)
    },
    "webhooks-sweep": {"task": "webhooks.tasks.sweep_inbound_events", "schedule": 60.0},
    "webhooks-silence": {"task": "webhooks.tasks.check_webhook_silence", "schedule": 300.0},
    "webhooks-prune": {
        "task": "webhooks.tasks.prune_inbound_events",
        "schedule": crontab(hour=4, minute=0),
    },
    # Expire approvals past APPROVAL_TTL_HOURS; pick up refunds left queued or unknown.
    "payments-sweep": {"task": "payments.tasks.payments_sweep", "schedule": 60.0},
    # Send approved payouts whose message was lost; recover those a worker left submitting.
    "payouts-sweep": {"task": "payments.tasks.payouts_sweep", "schedule": 60.0},
    # Batches: make the payouts of rows with bank details left unmade; mark finished ones done.
    "payout-batches-sweep": {"task": "payments.tasks.payout_batches_sweep", "schedule": 60.0},
    # Proof for /readyz that beat and a worker are alive (backoffice/readiness.py).
    "beat-heartbeat": {
        "task": "backoffice.tasks.beat_heartbeat",
        "schedule": float(READY_HEARTBEAT_SECONDS),
    },
    "payment-orders-sweep": {"task": "payments.tasks.payment_orders_sweep", "schedule": 60.0},
    # Remove export files past EXPORT_RETENTION_HOURS (payments/exports/jobs.py).
    "exports-prune": {"task": "payments.tasks.exports_prune", "schedule": 900.0},
}
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")

AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",  # first: refuses a locked username + address
    "social_core.backends.google.GoogleOAuth2",
    "django.contrib.auth.backends.ModelBackend",  # passwords, and permissions for both
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "dashboard"

SESSION_COOKIE_AGE = STAFF_SESSION_LIFETIME_SECONDS  # the absolute lifetime is also enforced
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_FAILURE_VIEW = "backoffice.views.csrf_failure"  # Django's own page has an inline style
X_FRAME_OPTIONS = "DENY"

OTP_TOTP_ISSUER = "FlashFX back-office"
OTP_ADMIN_HIDE_SENSITIVE_DATA = True

AXES_FAILURE_LIMIT = STAFF_SIGN_IN_FAILURE_LIMIT
AXES_COOLOFF_TIME = timedelta(minutes=STAFF_LOCKOUT_MINUTES)
# Username AND address: an attacker elsewhere cannot lock a colleague out.
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = False  # a Google sign-in must not wipe the OTP failures; reset after OTP
AXES_LOCKOUT_TEMPLATE = "accounts/locked_out.html"
AXES_CLIENT_IP_CALLABLE = "backoffice.audit.client_ip"
AXES_VERBOSE = False

SOCIAL_AUTH_URL_NAMESPACE = "social"
SOCIAL_AUTH_GOOGLE_OAUTH2_KEY = GOOGLE_OAUTH2_KEY
SOCIAL_AUTH_GOOGLE_OAUTH2_SECRET = GOOGLE_OAUTH2_SECRET
SOCIAL_AUTH_GOOGLE_OAUTH2_WHITELISTED_DOMAINS = GOOGLE_ALLOWED_DOMAINS
SOCIAL_AUTH_GOOGLE_OAUTH2_AUTH_EXTRA_ARGUMENTS = {"prompt": "select_account"}
SOCIAL_AUTH_LOGIN_REDIRECT_URL = "otp-verify"
SOCIAL_AUTH_LOGIN_ERROR_URL = "login"
SOCIAL_AUTH_RAISE_EXCEPTIONS = False  # a refused Google account is a message, in DEBUG too
SOCIAL_AUTH_REDIRECT_IS_HTTPS = not DEBUG
SOCIAL_AUTH_PIPELINE = (
    "social_core.pipeline.social_auth.social_details",
    "social_core.pipeline.social_auth.social_uid",
    "backoffice.google.allowed_domains_only",  # the email's domain and Google's `hd`
    "social_core.pipeline.social_auth.auth_allowed",  # the email's domain again (social-core's)
    "social_core.pipeline.social_auth.social_user",
    "backoffice.google.existing_staff_only",  # never creates an account
    "social_core.pipeline.social_auth.associate_user",
)

CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF],
        "font-src": [SELF],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [NONE],
        "frame-ancestors": [NONE],
        # The Google button posts to us, and we redirect to Google: form-action covers that hop.
        "form-action": [SELF, *(["https://accounts.google.com"] if GOOGLE_SIGN_IN else [])],
    }
}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("TIME_ZONE", default="UTC")
CELERY_TIMEZONE = TIME_ZONE
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
# Where collectstatic writes (the Docker image bakes them in at /app/staticfiles, outside the
# var volume); made if missing, as whitenoise reads it at start-up.
STATIC_ROOT = Path(env_str("STATIC_ROOT", default=str(VAR_DIR / "static")))
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
STATICFILES_DIRS = [BASE_DIR / "static"]
# With DEBUG off, `collectstatic` writes every file under a name with its content's hash and a
# gzip copy beside it, and pages link to the hashed names (whitenoise); a missing file is an
# error at render time, not a broken page. With DEBUG on, files are served as they are.
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}

LOG_LEVEL = env_str("LOG_LEVEL", default="INFO").upper()
if LOG_LEVEL not in logging.getLevelNamesMapping():
    raise ImproperlyConfigured(f"LOG_LEVEL must be a logging level name, not {LOG_LEVEL!r}")
# "json" (the default with DEBUG off): one JSON object per line, with the time in UTC, the
# level, the logger, the message, the request id (backoffice/log.py) and any exception.
# "plain": one line of text, for reading in a terminal (the default with DEBUG on).
LOG_FORMAT = env_str("LOG_FORMAT", default="plain" if DEBUG else "json")
if LOG_FORMAT not in ("json", "plain"):
    raise ImproperlyConfigured("LOG_FORMAT must be 'json' or 'plain'")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "backoffice.log.RequestIdFilter"}},
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(levelname)s %(name)s %(message)s %(request_id)s",
            "rename_fields": {"levelname": "level", "name": "logger"},
            "timestamp": "time",
        },
    },
    "handlers": {
        "console": {
            "class": "backoffice.log.StderrHandler",
            "formatter": LOG_FORMAT,
            "filters": ["request_id"],
        }
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    # Drop Django's own console/mail_admins handlers; its records reach the root handler.
    "loggers": {"django": {"level": LOG_LEVEL}},
}

if not DEBUG:
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", default=True)
    # Load balancers probe over plain HTTP; and FlashFX counts any 3xx as a failed delivery, so a
    # webhook that reaches us as HTTP behind a misconfigured proxy is verified by its signature
    # instead of being redirected.
    SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^webhooks/flashfx/?$"]
    SECURE_HSTS_SECONDS = 365 * 24 * 60 * 60
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
    SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", default=True)
    if env_bool("TRUSTED_PROXY_SSL_HEADER", default=False):
        # Only behind a proxy that always sets (never forwards) X-Forwarded-Proto.
        SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

if _missing:
    raise ImproperlyConfigured(
        "DEBUG is off and these environment variables are required but not set: "
        + ", ".join(_missing)
        + ". Set each (or <NAME>_FILE naming a file that holds it), or set DEBUG=true "
        "for local development defaults."
    )
