"""Settings for bench/webhooks.py: the app's own settings, served with a bare view beside it.

The benchmark starts gunicorn with DJANGO_SETTINGS_MODULE=bench.webhook_settings and DEBUG=true
in the environment, only so that backoffice.settings supplies its development secrets (the
webhook secret "sandbox-webhook-secret" among them). Everything else is the app's.
"""

from __future__ import annotations

from backoffice.settings import *  # noqa: F403

# The app's URLs plus /bench/bare/ (bench/webhook_urls.py); backoffice/urls.py is untouched.
ROOT_URLCONF = "bench.webhook_urls"

# Production runs with DEBUG off. DEBUG on wraps every cursor to record each SQL statement,
# which would tax the webhook (SQL) and not the bare view (no SQL). Turning it off here, after
# backoffice.settings has read its dev defaults, changes nothing else: the DEBUG-dependent
# settings (the HTTPS redirect and secure cookies) were decided at import, with DEBUG on.
DEBUG = False
