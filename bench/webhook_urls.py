"""URLs for bench/webhooks.py: the app's own, plus two baselines on the same server and
middleware: a bare POST view, and the durable floor (one raw INSERT of the body, committed)."""

from __future__ import annotations

from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from backoffice.middleware import public
from backoffice.urls import urlpatterns as app_urlpatterns


@public  # like the webhook: no sign-in
@csrf_exempt
@require_POST
def bare(request: HttpRequest) -> JsonResponse:
    """What any POST costs on this server: gunicorn, the middleware, URL routing, a response."""
    return JsonResponse({"status": "ok"})


# Created by bench/webhooks.py in its own database before the server starts.
FLOOR_TABLE = "bench_floor"


@public
@csrf_exempt
@require_POST
def floor(request: HttpRequest) -> JsonResponse:
    """The least a durable receipt can cost here: the body stored by one raw INSERT, committed
    (autocommit: ATOMIC_REQUESTS is off, as for the webhook view) before the 200."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {FLOOR_TABLE} (body, received_at) VALUES (%s, now())",  # noqa: S608 - our constant
            [request.body],
        )
    return JsonResponse({"status": "ok"})


urlpatterns = [path("bench/bare/", bare), path("bench/floor/", floor), *app_urlpatterns]
