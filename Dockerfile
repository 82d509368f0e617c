# syntax=docker/dockerfile:1
# The back-office image: one image for web (gunicorn), worker and beat (docker-compose.yml).
#   docker build -t flashfx-backoffice .
# Two stages: the first installs the locked dependencies (requirements-prod.lock, hashes
# checked) into a virtualenv and collects the static files; the final one copies the virtualenv
# and the code onto a clean slim Python, with no compiler, no pip cache and no test tools, and
# runs as an unprivileged user.

FROM python:3.11-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONDONTWRITEBYTECODE=1
WORKDIR /app
RUN python -m venv /app/.venv
COPY requirements-prod.lock ./
RUN /app/.venv/bin/pip install --require-hashes --no-deps -r requirements-prod.lock
COPY manage.py ./
COPY backoffice ./backoffice
COPY mirrors ./mirrors
COPY parties ./parties
COPY payments ./payments
COPY webhooks ./webhooks
COPY flashfx ./flashfx
COPY templates ./templates
COPY static ./static
COPY docs ./docs
# Hashed and gzip-compressed static files (whitenoise), baked into the image. Settings need
# their production variables to load: placeholders that are used for nothing else.
RUN DEBUG=false STATIC_ROOT=/app/staticfiles VAR_DIR=/tmp/var SECRET_KEY=collectstatic-only \
    ALLOWED_HOSTS=localhost AUDIT_HMAC_KEY=unused FLASHFX_API_URL=http://unused/ \
    FLASHFX_EMAIL=unused FLASHFX_PASSWORD=unused FLASHFX_WEBHOOK_SECRET=unused \
    /app/.venv/bin/python manage.py collectstatic --noinput --verbosity 0 \
    && rm -rf /tmp/var

FROM python:3.11-slim-bookworm
ENV PATH=/app/.venv/bin:$PATH PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 PYTHONPATH=/app \
    STATIC_ROOT=/app/staticfiles VAR_DIR=/app/var DEBUG=false
RUN groupadd --system --gid 10001 backoffice \
    && useradd --system --uid 10001 --gid backoffice --home-dir /app --shell /usr/sbin/nologin backoffice
WORKDIR /app
COPY --from=build /app /app
# Owned by the app user: named volumes mounted here (compose) take these permissions.
RUN mkdir -p /app/var /app/exports && chown backoffice:backoffice /app/var /app/exports
USER backoffice
EXPOSE 8000
CMD ["gunicorn", "backoffice.wsgi", "--config", "python:backoffice.gunicorn_conf"]
