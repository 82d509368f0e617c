"""URLs for bench/webhooks.py: the app's own, plus a bare POST view as the baseline."""

from __future__ import annotations

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


urlpatterns = [path("bench/bare/", bare), *app_urlpatterns]
