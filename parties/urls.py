from __future__ import annotations

from django.urls import path

from . import views

app_name = "parties"

urlpatterns = [
    path("", views.parties, name="parties"),
    path("recipients/", views.recipients, name="recipients"),
    path("recipients/new/", views.recipient_new, name="recipient-new"),
    path("recipients/<str:flashfx_id>/", views.recipient, name="recipient"),
    path("recipients/<str:flashfx_id>/edit/", views.recipient_edit, name="recipient-edit"),
    path("recipients/<str:flashfx_id>/delete/", views.recipient_delete, name="recipient-delete"),
    path(
        "recipients/<str:flashfx_id>/check-payee/",
        views.recipient_check_payee,
        name="recipient-check-payee",
    ),
    path("senders/", views.senders, name="senders"),
    path("senders/new/", views.sender_new, name="sender-new"),
    path("senders/<str:flashfx_id>/", views.sender, name="sender"),
    path("senders/<str:flashfx_id>/edit/", views.sender_edit, name="sender-edit"),
    path("senders/<str:flashfx_id>/delete/", views.sender_delete, name="sender-delete"),
    path("sub-clients/", views.sub_clients, name="sub-clients"),
    path("sub-clients/new/", views.sub_client_new, name="sub-client-new"),
]
