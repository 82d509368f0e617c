"""gunicorn's settings for the back-office (Procfile.prod, the Dockerfile's web service).

    gunicorn backoffice.wsgi --config python:backoffice.gunicorn_conf

Threaded workers (gthread): a streamed export or a slow FlashFX call holds one thread, not a
whole process, and the worker keeps telling the arbiter it is alive, so `timeout` does not kill
it mid-download. gunicorn's own variables still apply on top: WEB_CONCURRENCY (processes),
FORWARDED_ALLOW_IPS (proxies whose X-Forwarded-* it believes) and GUNICORN_CMD_ARGS (e.g.
--certfile/--keyfile, as `make prod-local` serves HTTPS itself).
"""

from __future__ import annotations

import os

bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:8000")
workers = int(os.environ.get("WEB_CONCURRENCY", "3"))
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
timeout = 60  # seconds without a heartbeat from a worker process, not per request
graceful_timeout = 30  # requests in flight finish on SIGTERM
keepalive = 5
max_requests = 2000  # recycle a process now and then; jitter keeps them from restarting together
max_requests_jitter = 200
# One line per request on stdout with the request id the app answers with (backoffice/log.py),
# so it joins the app's JSON logs. The query string is left out: searches hold people's names.
accesslog = "-"
access_log_format = '%(h)s "%(m)s %(U)s" %(s)s %(B)s %(M)sms id=%({x-request-id}o)s'
errorlog = "-"
