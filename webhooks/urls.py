"""FlashFX's receiver and the staff pages about what it received."""

from __future__ import annotations

from django.urls import path

from backoffice.middleware import public

from . import staff_views, views

app_name = "webhooks"

urlpatterns = [
    # Both spellings: FlashFX counts a redirect as a failed delivery (docs/flashfx.md §4.2, §5.27).
    # FlashFX signs its requests (webhooks/receiving.py): no sign-in. First: the busiest route.
    path("flashfx/", public(views.flashfx_webhook), name="flashfx-webhook"),
    path("flashfx", public(views.flashfx_webhook)),
    path("events/", staff_views.events, name="events"),
    path("events/replay/", staff_views.events_replay, name="events-replay"),
    path("events/<int:pk>/", staff_views.event, name="event"),
]
