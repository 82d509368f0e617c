from __future__ import annotations

from django.urls import path

from . import views

app_name = "parties"

urlpatterns = [
    path("", views.parties, name="parties"),
]
