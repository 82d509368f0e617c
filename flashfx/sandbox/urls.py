from __future__ import annotations

from django.urls import path

from . import views

urlpatterns = [
    path("", views.graphql_endpoint, name="graphql"),
    path("_sandbox/health", views.control_health),
    path("_sandbox/reset", views.control_reset),
    path("_sandbox/config", views.control_config),
    path("_sandbox/faults", views.control_faults),
    path("_sandbox/deposits", views.control_deposit_create),
    path("_sandbox/deposits/import", views.control_deposit_import),
    path("_sandbox/<str:kind>/<str:entity_id>/advance", views.control_advance),
    path("_sandbox/webhooks", views.control_webhook_list),
    path("_sandbox/webhooks/test", views.control_webhook_test),
    path("_sandbox/clock/tick", views.control_tick),
    path("_sandbox/cop-checks", views.control_cop_checks),
    path("console/", views.console, name="console"),
    path("console/<str:action>", views.console_action, name="console-action"),
]
